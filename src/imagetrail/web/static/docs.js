// Swagger UI for /openapi.json; a file rather than an inline script, for the CSP.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    // The online validator's badge is an image from validator.swagger.io: the CSP forbids it,
    // and the page must work air-gapped.
    validatorUrl: null,
  });
});
