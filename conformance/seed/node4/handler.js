'use strict';

// The original KLR node4 example: a landing page served through an HTTP endpoint (API Gateway),
// greeting the `name` of the query string.
module.exports.landingPage = (event, context, callback) => {
  let greeting = '<p>Hey Unknown!</p>';
  if (event.queryStringParameters && event.queryStringParameters.name) {
    greeting = `<p>Hey ${event.queryStringParameters.name}!</p>`;
  }

  const html = `
  <html>
    <style>
      h1 { color: #73757d; }
    </style>
    <body>
      <h1>Landing Page</h1>
      ${greeting}
    </body>
  </html>`;

  callback(null, {
    statusCode: 200,
    headers: {
      'Content-Type': 'text/html',
    },
    body: html,
  });
};
