// Swagger UI for /openapi.json; a file rather than an inline script, for the CSP.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
});
