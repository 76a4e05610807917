'use strict';

// A plain Node.js request listener behind serverless-http, which turns each event mode's
// event into the request it hands the listener: what the library made of the request.
const serverless = require('serverless-http');

function listener(req, res) {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const url = new URL(req.url, 'http://localhost');
    const query = {};
    for (const key of new Set(url.searchParams.keys())) {
      query[key] = url.searchParams.getAll(key);
    }
    const cookie = req.headers.cookie || '';
    res.statusCode = 201;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('X-Adapter', 'serverless-http');
    res.end(JSON.stringify({
      method: req.method,
      path: decodeURIComponent(url.pathname),
      query,
      header: req.headers['x-test'] || null,
      largeHeader: (req.headers['x-large'] || '').length,
      cookies: cookie ? cookie.split('; ') : [],
      body: Buffer.concat(chunks).toString('base64'),
    }));
  });
}

exports.handler = serverless(listener);
