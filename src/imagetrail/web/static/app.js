// filled by the pages
