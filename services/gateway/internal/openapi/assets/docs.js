"use strict";
// Swagger UI over the gateway's own document: "Authorize" once with an API
// key (kept in this tab's storage across reloads), then "Try it out" sends
// the request from the page and shows the status, headers and body.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  tryItOutEnabled: true,
  persistAuthorization: true,
  displayRequestDuration: true,
  displayOperationId: false,
  filter: true,
  showExtensions: true,
  showCommonExtensions: true,
  defaultModelsExpandDepth: 0,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
