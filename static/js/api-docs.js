// The API reference page (/docs): Swagger UI, vendored, reading this site's /openapi.json.
// A file of its own (not an inline script) so the page keeps the site's Content-Security-Policy.
window.addEventListener("DOMContentLoaded", function () {
  window.SwaggerUIBundle({
    url: document.getElementById("swagger-ui").dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    // No call to the public validator: the page works offline and sends the schema nowhere.
    validatorUrl: null,
  });
});
