#!/usr/bin/env node
/*
 * KLR bootstrap shim: a small Lambda runtime client for Node.js functions.
 *
 * Installed as /var/runtime/bootstrap. It loads the function named by _HANDLER, then loops over
 * the Lambda Runtime API (2018-06-01) at $AWS_LAMBDA_RUNTIME_API: get an event, call
 * handler(event, context, callback), post the result or error. What the function observes
 * (callback and promise semantics, the context object, error types and shapes, log lines)
 * follows the official Node.js runtime client. Its sections and rules are those of every shim
 * (bootstrap/README.md).
 *
 * One file, `http` only, written in the JavaScript that Node.js 4 parses (var, function
 * expressions, no import statement), so that it runs unchanged on Node.js 4 through 22.
 * Response streaming (awslambda.streamifyResponse) works on all of them too: a streaming
 * handler is any function that returns a promise, an async function where node has them.
 */
'use strict';

var fs = require('fs');
var http = require('http');
var path = require('path');
var stream = require('stream');
var url = require('url');
var util = require('util');


var current = null; // the invocation whose result is not posted yet
var currentRequestId; // for log lines; undefined during init, as on Lambda

// ---- 1. Settings --------------------------------------------------------------------------------

var MISSING_SETTING = 'bootstrap: %s is not set; the runtime server (/opt/aws-custom-runtime) ' +
                      'sets it to %s for each bootstrap it starts: run that, or set it yourself';

/** A setting the runtime server always gives: without it, say so and exit 1. */
function requiredSetting(name, meaning) {
  var value = process.env[name];
  if (!value) {
    exitWithMessage(util.format(MISSING_SETTING, name, meaning));
  }
  return value;
}

/** The shim's own last words go to stderr as they are: console.* is the function's log. */
function exitWithMessage(message) {
  process.stderr.write(message + '\n');
  process.exit(1);
}

// ---- 2. Runtime API client ----------------------------------------------------------------------

var API_PREFIX = '/2018-06-01/runtime';
var ERROR_CONTENT_TYPE = 'application/vnd.aws.lambda.error+json';

/**
 * The Runtime API over one keep-alive connection, with the rules of bootstrap/README.md: one
 * retry, an unexpected status ends the process. Each method calls back only on success. An
 * idle kept-alive socket does not hold the event loop open, so "the event loop is empty" still
 * means the function has nothing left.
 */
function RuntimeApiClient(address) {
  var colon = address.lastIndexOf(':');
  this.address = address;
  this.host = address.slice(0, colon);
  this.port = Number(address.slice(colon + 1));
  this.agent = new http.Agent({keepAlive: true, maxSockets: 1});
}

/** done({requestId, event, headers}) with the next event, whenever there is one. */
RuntimeApiClient.prototype.nextInvocation = function (done) {
  var self = this;
  var route = API_PREFIX + '/invocation/next';
  this.request('GET', route, null, {}, function (response, body) {
    if (response.statusCode !== 200) {
      self.unexpected('GET', route, response.statusCode);
    }
    done({requestId: response.headers['lambda-runtime-aws-request-id'], event: body,
          headers: response.headers});
  });
};

RuntimeApiClient.prototype.postResponse = function (requestId, body, contentType, done) {
  this.post('/invocation/' + encodeURIComponent(requestId) + '/response', body,
            {'Content-Type': contentType}, done);
};

RuntimeApiClient.prototype.postError = function (requestId, body, errorType, done) {
  this.post('/invocation/' + encodeURIComponent(requestId) + '/error', body, errorHeaders(errorType),
            done);
};

RuntimeApiClient.prototype.postInitError = function (body, errorType, done) {
  this.post('/init/error', body, errorHeaders(errorType), done);
};

function errorHeaders(errorType) {
  return {'Content-Type': ERROR_CONTENT_TYPE,
          'Lambda-Runtime-Function-Error-Type': printable(errorType)};
}

/** A header holds printable ASCII (node refuses anything else); an error's name may not be. */
function printable(value) {
  return String(value).replace(/[^\x20-\x7e]/g, '?');
}

RuntimeApiClient.prototype.post = function (route, body, headers, done) {
  var self = this;
  route = API_PREFIX + route;
  this.request('POST', route, body, headers, function (response) {
    self.checkPosted(route, response.statusCode);
    done();
  });
};

RuntimeApiClient.prototype.checkPosted = function (route, status) {
  if (status >= 400 && status < 500) {
    // The server refused this result (too large, stale id) and settled the invocation itself.
    process.stderr.write('bootstrap: the Runtime API refused POST ' + route + ' with HTTP ' +
                         status + '\n');
  } else if (status !== 202) {
    this.unexpected('POST', route, status);
  }
};

var ERROR_TRAILERS = ['Lambda-Runtime-Function-Error-Type', 'Lambda-Runtime-Function-Error-Body'];

/**
 * A streamed result (Lambda's response streaming): the request returned takes the body as the
 * function writes it, chunked, and an error as trailers; done(status) once the server has
 * answered. It goes on a connection of its own: bytes already sent cannot be sent again, so a
 * stream is never retried and must never meet a kept-alive connection that was dropped. A
 * failure before the answer means that the server is gone.
 */
RuntimeApiClient.prototype.streamResponse = function (requestId, contentType, done) {
  var self = this;
  var route = API_PREFIX + '/invocation/' + encodeURIComponent(requestId) + '/response';
  var answered = false;
  var headers = {'Content-Type': contentType, 'Lambda-Runtime-Function-Response-Mode': 'streaming',
                 'Transfer-Encoding': 'chunked', 'Trailer': ERROR_TRAILERS.join(', ')};
  var request = http.request({host: this.host, port: this.port, method: 'POST', path: route,
                              headers: headers, agent: false}, function (response) {
    answered = true;
    response.resume();
    response.on('end', function () {
      self.checkPosted(route, response.statusCode);
      done(response.statusCode);
    });
  });
  request.on('socket', function (socket) {
    socket.setNoDelay(true); // each write goes out as it is made
  });
  request.on('error', function (error) {
    if (!answered) { // after an answer (a refusal), the server has closed the connection
      exitWithMessage('bootstrap: lost the Runtime API at ' + self.address + ': ' + error.message);
    }
  });
  return request;
};

/** The trailers that end a stream with an error: its type, and its body as base64 JSON. */
function errorTrailers(description) {
  var trailers = {};
  trailers[ERROR_TRAILERS[0]] = printable(description.errorType);
  trailers[ERROR_TRAILERS[1]] = Buffer.from(JSON.stringify(description)).toString('base64');
  return trailers;
}

RuntimeApiClient.prototype.request = function (method, route, body, headers, done, retried) {
  var self = this;
  if (body !== null) {
    headers['Content-Length'] = Buffer.byteLength(body);
  }
  var request = http.request({host: this.host, port: this.port, method: method, path: route,
                              headers: headers, agent: this.agent}, function (response) {
    var chunks = [];
    response.on('data', function (chunk) {
      chunks.push(chunk);
    });
    response.on('end', function () {
      done(response, Buffer.concat(chunks).toString('utf8'));
    });
  });
  request.on('error', function (error) {
    if (retried) {
      // The server is gone; it reports the lost bootstrap itself.
      exitWithMessage('bootstrap: lost the Runtime API at ' + self.address + ': ' + error.message);
    }
    self.request(method, route, body, headers, done, true); // a dropped keep-alive connection
  });
  request.end(body === null ? undefined : body);
};

RuntimeApiClient.prototype.unexpected = function (method, route, status) {
  exitWithMessage('bootstrap: the Runtime API answered ' + method + ' ' + route + ' with HTTP ' +
                  status);
};

// ---- 3. Errors ----------------------------------------------------------------------------------

var LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];

function runtimeError(type, message, cause) {
  var error = new Error(message);
  error.name = type;
  // The trace that helps is the cause's (where the user's code failed), not this file's.
  error.stack = cause && typeof cause.stack === 'string' ? cause.stack : type + ': ' + message;
  return error;
}

/** The official error shape: the stack is under `trace`; a thrown non-Error is typed by typeof. */
function describeError(error) {
  try {
    if (error instanceof Error || (error && typeof error.name === 'string' &&
        typeof error.message === 'string' && typeof error.stack === 'string')) {
      return {errorType: error.name, errorMessage: error.message,
              trace: typeof error.stack === 'string' ? error.stack.split('\n') : []};
    }
    return {errorType: typeof error, errorMessage: String(error), trace: []};
  } catch (unreadable) {
    return {errorType: 'handled', errorMessage: 'callback called with Error argument, but there ' +
            'was a problem while retrieving one or more of its message, name, and stack', trace: []};
  }
}

function logError(label, description) {
  if (JSON_LOGS) {
    // One record whose message is the error, as Lambda's JSON log format has it.
    console.error({errorType: description.errorType, errorMessage: description.errorMessage,
                   stackTrace: description.trace});
  } else {
    console.error(label, '\t' + JSON.stringify(description));
  }
}

// Lambda's Node.js runtimes write console.* as JSON records from Node.js 16 on
// (AWS_LAMBDA_LOG_FORMAT=JSON); older ones have text logs only.
var JSON_LOGS = String(process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON' &&
                Number(process.versions.node.split('.')[0]) >= 16;

/**
 * console.* as on Lambda: one stdout line per call, `time \t request id \t LEVEL \t message`,
 * or a JSON record in the JSON log format; calls below AWS_LAMBDA_LOG_LEVEL write nothing.
 */
function patchConsole() {
  var setting = String(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase();
  var lowest = Math.max(0, LOG_LEVELS.indexOf(setting));
  function logger(level) {
    if (LOG_LEVELS.indexOf(level) < lowest) {
      return function () {};
    }
    return function () {
      var time = new Date().toISOString();
      var line = JSON_LOGS ? jsonLogRecord(time, level, Array.prototype.slice.call(arguments))
        : [time, String(currentRequestId), level, util.format.apply(util, arguments)].join('\t');
      // Log collectors split records at newlines: a multi-line message stays one record.
      process.stdout.write(line.replace(/\n/g, '\r') + '\n');
    };
  }
  console.trace = logger('TRACE');
  console.debug = logger('DEBUG');
  console.info = console.log = logger('INFO');
  console.warn = logger('WARN');
  console.error = logger('ERROR');
  console.fatal = logger('FATAL');
}

/**
 * A console call as a JSON record: {timestamp, level, requestId (none during init), message}.
 * One argument is the message as it is (an object stays JSON, an Error becomes its errorType,
 * errorMessage and stackTrace); several are formatted as text, with the first Error's fields.
 */
function jsonLogRecord(time, level, args) {
  var record = {timestamp: time, level: level, requestId: currentRequestId};
  if (args.length === 1) {
    record.message = args[0];
    try {
      return JSON.stringify(record, function (key, value) {
        return value instanceof Error ? Object.assign(errorFields(value), value) : value;
      });
    } catch (unserialisable) { // circular, BigInt...
      record.message = util.format(args[0]);
      return JSON.stringify(record);
    }
  }
  record.message = util.format.apply(util, args);
  for (var i = 0; i < args.length; i++) {
    if (args[i] instanceof Error) {
      return JSON.stringify(Object.assign(record, errorFields(args[i])));
    }
  }
  return JSON.stringify(record);
}

function errorFields(error) {
  return {errorType: (error.constructor && error.constructor.name) || 'UnknownError',
          errorMessage: error.message,
          stackTrace: typeof error.stack === 'string' ? error.stack.split('\n') : []};
}

// ---- 4. Context ---------------------------------------------------------------------------------

function parseJsonHeader(value, what) {
  if (value === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new Error('Cannot parse ' + what + ' as json: ' + error);
  }
}

/**
 * Lambda's context object for one invocation, from its headers and the environment; `answer`
 * (error, result) is how done, succeed and fail answer the invocation.
 */
function makeContext(requestId, headers, answer) {
  var env = process.env;
  var deadline = Number(headers['lambda-runtime-deadline-ms']);
  var contextCalled = false;
  var context = {
    awsRequestId: requestId,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    identity: undefined,
    clientContext: undefined,
    tenantId: headers['lambda-runtime-aws-tenant-id'],
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: function () {
      return Math.max(0, deadline - Date.now());
    },
    // The legacy context methods answer at once, whatever callbackWaitsForEmptyEventLoop says.
    done: function (error, result) {
      if (!contextCalled) {
        contextCalled = true;
        answer(error, result);
      }
    },
    succeed: function (result) {
      context.done(null, result);
    },
    fail: function (error) {
      context.done(error === undefined || error === null ? 'handled' : error);
    }
  };
  return context;
}

// ---- 5. Handler loading -------------------------------------------------------------------------

function supportsEsModules(version) {
  var parts = version.split('.').map(Number);
  return parts[0] > 12 || (parts[0] === 12 && parts[1] >= 17);
}

// ES modules load with import() from Node.js 12.17 on. The expression is compiled here, so that
// older versions, which cannot parse it, still parse this file.
var importModule = supportsEsModules(process.versions.node)
  ? new Function('specifier', 'return import(specifier)')
  : null;

function importFile(file) {
  if (!importModule) {
    return Promise.reject(runtimeError('Runtime.ImportModuleError', 'Error: ' + file + ' is an ES ' +
                                       'module, which Node.js ' + process.version + ' cannot load'));
  }
  return importModule(url.pathToFileURL(file).href);
}

function refusesEsm(error) {
  return error && (error.code === 'ERR_REQUIRE_ESM' || error.code === 'ERR_REQUIRE_ASYNC_MODULE' ||
                   (error instanceof SyntaxError && /\b(import|export)\b/.test(error.message)));
}

function requireFile(file) {
  return new Promise(function (resolve) {
    resolve(require(file));
  }).then(null, function (error) {
    // ES module code that this node's require() refuses (an ES module it knows as one, one with
    // a top-level await, ES module syntax in a .js) loads with import() where node can load it.
    if (importModule && refusesEsm(error)) {
      return importFile(file);
    }
    throw error;
  });
}

/** Whether the nearest package.json above `folder` says "type": "module". */
function inModulePackage(folder) {
  for (;;) {
    var manifest = path.join(folder, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        return JSON.parse(fs.readFileSync(manifest, 'utf8')).type === 'module';
      } catch (unreadable) {
        return false;
      }
    }
    var parent = path.dirname(folder);
    if (parent === folder || path.basename(folder) === 'node_modules') {
      return false;
    }
    folder = parent;
  }
}

function asLoadError(error) {
  if (error instanceof SyntaxError) {
    return runtimeError('Runtime.UserCodeSyntaxError', String(error), error);
  }
  if (error && (error.code === 'MODULE_NOT_FOUND' || error.code === 'ERR_MODULE_NOT_FOUND')) {
    return runtimeError('Runtime.ImportModuleError', String(error), error);
  }
  return error;
}

/** Lambda's order: the name as given, then .js (an ES module under "type": "module"), .mjs, .cjs. */
function loadModule(base) {
  var loading;
  if (fs.existsSync(base)) {
    loading = requireFile(base);
  } else if (fs.existsSync(base + '.js')) {
    var esModule = importModule && inModulePackage(path.dirname(base));
    loading = esModule ? importFile(base + '.js') : requireFile(base + '.js');
  } else if (fs.existsSync(base + '.mjs')) {
    loading = importFile(base + '.mjs');
  } else if (fs.existsSync(base + '.cjs')) {
    loading = requireFile(base + '.cjs');
  } else {
    loading = requireFile(base); // node's own message for what is not there
  }
  return loading.then(null, function (error) {
    throw asLoadError(error);
  });
}

// Where awslambda.streamifyResponse marks a handler: the official client's symbols.
var HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
var HANDLER_HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
var STREAM_RESPONSE = 'response';
var HTTP_INTEGRATION_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
var PRELUDE_DELIMITER_BYTES = 8;

/**
 * The `awslambda` global of Lambda's Node.js runtimes, there while the function loads (unless
 * AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA says no): streamifyResponse and HttpResponseStream.
 */
function installAwsLambdaGlobal() {
  var refused = String(process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA || '');
  if (refused === '1' || refused === 'true') {
    return;
  }
  global.awslambda = Object.assign({}, global.awslambda, {
    streamifyResponse: function (handler, options) {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (options && typeof options.highWaterMark === 'number' && options.highWaterMark >= 0) {
        handler[HANDLER_HIGH_WATER_MARK] = parseInt(options.highWaterMark, 10);
      }
      return handler;
    },
    HttpResponseStream: HttpResponseStream
  });
}

/**
 * Function URLs' and HTTP APIs' streamed answer: a JSON prelude (statusCode, headers, cookies),
 * eight NUL bytes, then the body. JSON text never holds a raw NUL, so the prelude ends there.
 */
function HttpResponseStream() {}

HttpResponseStream.from = function (responseStream, prelude) {
  if (prelude === null || typeof prelude !== 'object') {
    throw new TypeError('HttpResponseStream.from(responseStream, prelude): the prelude is an ' +
                        'object such as {statusCode: 200, headers: {...}, cookies: [...]}');
  }
  responseStream.setContentType(HTTP_INTEGRATION_CONTENT_TYPE);
  var json = JSON.stringify(prelude);
  responseStream._onBeforeFirstWrite = function (write) {
    write(json);
    write(Buffer.alloc(PRELUDE_DELIMITER_BYTES));
  };
  return responseStream;
};

/** Whether the handler streams its response; a mark other than streamifyResponse's is wrong. */
function isStreaming(handler) {
  var mark = handler[HANDLER_STREAMING];
  if (mark === undefined || mark === null || mark === false) {
    return false;
  }
  if (mark !== STREAM_RESPONSE) {
    throw runtimeError('Runtime.MalformedStreamingHandler', 'Only response streaming is supported.');
  }
  return true;
}

/** `file.fn` or `dir/file.obj.fn`, relative to the task root. */
function loadHandler(taskRoot, name) {
  return new Promise(function (resolve) {
    if (name.indexOf('..') !== -1) {
      throw runtimeError('Runtime.MalformedHandlerName', "'" + name + "' is not a valid handler name: " +
                         "'..' is not allowed; name the file relative to the task root");
    }
    var fileAndPath = path.basename(name);
    var match = /^([^.]*)\.(.*)$/.exec(fileAndPath);
    if (!match) {
      throw runtimeError('Runtime.MalformedHandlerName', 'Bad handler');
    }
    var base = path.resolve(taskRoot, name.slice(0, name.length - fileAndPath.length), match[1]);
    resolve(loadModule(base).then(function (module) {
      var handler = match[2].split('.').reduce(function (value, key) {
        return value && value[key];
      }, module);
      if (!handler) {
        throw runtimeError('Runtime.HandlerNotFound', name + ' is undefined or not exported');
      }
      if (typeof handler !== 'function') {
        throw runtimeError('Runtime.HandlerNotFound', name + ' is not a function');
      }
      isStreaming(handler);
      return handler;
    }));
  });
}

// ---- 6. The loop --------------------------------------------------------------------------------

// The official client's exit statuses, which the server answers by starting a fresh process.
var EXIT_UNCAUGHT_EXCEPTION = 129;
var EXIT_UNHANDLED_REJECTION = 128;

/**
 * One event being handled. Its result goes out once: the first of the callback's calls counts,
 * and so does the first of succeed/fail/done, and whichever of them answers first wins.
 */
function Invocation(api, received, next) {
  var self = this;
  this.api = api;
  this.headers = received.headers;
  this.id = received.requestId;
  this.event = received.event;
  this.next = next; // called once the result is posted
  this.answered = false;
  this.callbackCalled = false;
  // What happens when the function leaves nothing to run and has not answered: a handler that
  // never calls back answers null.
  this.onIdle = function () {
    self.finish(null, null);
  };
  this.callback = function (error, result) {
    if (self.callbackCalled) {
      return;
    }
    self.callbackCalled = true;
    if (error !== undefined && error !== null) {
      self.finish(error);
    } else if (self.context.callbackWaitsForEmptyEventLoop) {
      self.onIdle = function () {
        self.finish(null, result);
      };
    } else {
      self.finish(null, result);
    }
  };
  this.context = makeContext(this.id, this.headers, function (error, result) {
    self.finish(error, result);
  });
}

/** The context's parts that can fail (the caller's JSON), added where a failure fails the
 * invocation. */
function addIdentities(context, headers) {
  context.identity = parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity');
  context.clientContext = parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext');
}

Invocation.prototype.run = function (handler) {
  var self = this;
  var headers = this.headers;
  var context = this.context;
  try {
    addIdentities(context, headers);
    var result = handler(JSON.parse(this.event), context, this.callback);
    // A promise (an async handler's, or any thenable) answers when it settles.
    if (result && typeof result.then === 'function') {
      if (!this.callbackCalled) {
        this.onIdle = function () {
          self.finish(runtimeError('Runtime.NodeJsExit', 'The event loop became empty before the ' +
                                   "handler's promise settled: nothing is left that could settle it"));
        };
      }
      result.then(context.succeed, context.fail);
    }
  } catch (error) {
    this.callback(error);
  }
};

/** Whether this invocation may still answer; it then has, and the next answer is ignored. */
Invocation.prototype.claim = function () {
  if (this.answered) {
    console.warn('Invocation ' + this.id + ' already has a result: a later one is ignored');
    return false;
  }
  this.answered = true;
  current = null;
  return true;
};

/** Answer with the result (error null or undefined) or the error, then take the next event. */
Invocation.prototype.finish = function (error, result) {
  if (!this.claim()) {
    return;
  }
  var failed = error !== undefined && error !== null;
  if (!failed) {
    try {
      // undefined (and what JSON cannot express at all, such as a function) is sent as null
      var body = JSON.stringify(result === undefined ? null : result) || 'null';
    } catch (cause) {
      failed = true;
      error = runtimeError('Runtime.JSONStringifyError', 'Unable to stringify response body', cause);
    }
  }
  if (!failed) {
    this.api.postResponse(this.id, body, 'application/json', this.next);
    return;
  }
  var description = describeError(error);
  logError('Invoke Error', description);
  this.api.postError(this.id, JSON.stringify(description), description.errorType, this.next);
};

/** The error nobody caught (description), posted if no result was; then done(). */
Invocation.prototype.failFatally = function (description, done) {
  if (this.claim()) {
    this.api.postError(this.id, JSON.stringify(description), description.errorType, done);
  } else {
    done();
  }
};

// Response streaming: a handler marked by awslambda.streamifyResponse writes its result to a
// ResponseStream, which posts it as Lambda's streaming response mode.

var STREAM_CONTENT_TYPE = 'application/octet-stream';

/**
 * What a streaming handler writes its response to: a Writable whose bytes go to the Runtime API
 * as they are written, with the Writable's backpressure (a write returns false, and calls back,
 * once the connection has taken it). The request opens at the first write, or at the end: until
 * then setContentType still counts. `open(contentType)` opens it.
 */
function ResponseStream(open, highWaterMark) {
  var self = this;
  stream.Writable.call(this, highWaterMark === undefined ? {} : {highWaterMark: highWaterMark});
  this.open = open;
  this.contentType = STREAM_CONTENT_TYPE;
  this.request = null;
  this.writeCalled = false; // the content type is settled
  this.ended = false; // end() was called
  this.sent = false; // the request has ended: the result is out
  this.dropping = false; // the server refused the result: what is written goes nowhere
  this.failure = null; // an error's description, sent as trailers at the end
  this.cut = false; // destroyed before the result was out
  this.cause = null; // the error it was destroyed with
  this.waiting = null; // the write's callback that waits for the connection to drain
  this.on('finish', function () {
    self.send();
  });
}
util.inherits(ResponseStream, stream.Writable);

ResponseStream.prototype.setContentType = function (contentType) {
  if (this.writeCalled) {
    throw runtimeError('Runtime.InvalidStreamingOperation', 'Cannot set content-type, too late.');
  }
  if (/[^\x20-\x7e]/.test(String(contentType))) {
    throw new TypeError('setContentType takes a media type in printable ASCII, such as text/plain');
  }
  this.contentType = String(contentType);
};

/** What the official client writes: strings and bytes as they are, anything else as JSON. */
function asChunk(chunk) {
  if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) {
    return chunk;
  }
  if (chunk instanceof Uint8Array) {
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  return JSON.stringify(chunk);
}

ResponseStream.prototype.write = function (chunk, encoding, callback) {
  this.writeCalled = true;
  return stream.Writable.prototype.write.call(this, asChunk(chunk), encoding, callback);
};

ResponseStream.prototype.end = function (chunk, encoding, callback) {
  if (typeof chunk === 'function') {
    callback = chunk;
    chunk = null;
  } else if (typeof encoding === 'function') {
    callback = encoding;
    encoding = undefined;
  }
  if (chunk !== null && chunk !== undefined) {
    this.write(chunk, encoding);
  }
  this.writeCalled = this.ended = true;
  return stream.Writable.prototype.end.call(this, callback);
};

ResponseStream.prototype._write = function (chunk, encoding, callback) {
  if (this.dropping || this.begin().write(chunk)) {
    callback();
  } else {
    this.waiting = callback;
  }
};

/** The request, opened with its prelude (HttpResponseStream.from's) on first use. */
ResponseStream.prototype.begin = function () {
  var self = this;
  if (!this.request) {
    this.request = this.open(this.contentType);
    this.request.on('drain', function () {
      self.release();
    });
    if (typeof this._onBeforeFirstWrite === 'function') {
      this._onBeforeFirstWrite(function (bytes) {
        self.request.write(asChunk(bytes));
      });
    }
  }
  return this.request;
};

ResponseStream.prototype.release = function () {
  var callback = this.waiting;
  this.waiting = null;
  if (callback) {
    callback();
  }
};

/** The server has refused the result: what is still written is dropped. */
ResponseStream.prototype.drop = function () {
  this.dropping = true;
  this.release();
};

/** Ends the request: the rest of the body has gone, then the error's trailers if it failed. */
ResponseStream.prototype.send = function () {
  if (this.sent) {
    return;
  }
  this.sent = true;
  var request = this.begin();
  if (this.failure) {
    request.addTrailers(errorTrailers(this.failure));
  }
  request.end();
};

/** Ends the stream with an error, after what was written; false once the result is out. */
ResponseStream.prototype.fail = function (description) {
  if (this.sent) {
    return false;
  }
  this.failure = this.failure || description;
  if (this.cut) {
    this.send(); // a destroyed Writable finishes no more
  } else if (!this.ended) {
    this.end();
  }
  return true;
};

/**
 * destroy(), from Node.js 8 (a pipeline's, when its source fails): what is still buffered is
 * dropped, and the invocation ends the request once the handler has settled, with its error or
 * else the one given here (none if the stream had been ended).
 */
ResponseStream.prototype._destroy = function (error, callback) {
  if (!this.sent) {
    this.cut = true;
    this.cause = error || (this.ended ? null : runtimeError('Runtime.InvalidStreamingOperation',
                                                            'The response stream was destroyed ' +
                                                            'before it ended'));
  }
  this.release();
  callback(null); // the error goes to the caller, not to an 'error' event nobody may listen to
};

/**
 * One event handled by a streaming handler, handler(event, responseStream, context), which
 * returns a promise. The next event is taken once the promise has settled and the server has
 * answered the streamed result (or the error posted when nothing had been written).
 */
function StreamingInvocation(api, received, next, highWaterMark) {
  var self = this;
  this.api = api;
  this.headers = received.headers;
  this.id = received.requestId;
  this.event = received.event;
  this.next = next;
  this.settled = false; // the handler is done (its promise settled, or it failed)
  this.answered = false; // the server has answered the result
  this.failed = false; // an error has been sent, or was too late to be
  this.proceeded = false;
  this.exit = null; // after an error nobody caught: what happens instead of the next event
  this.onIdle = function () {
    self.fail(runtimeError('Runtime.NodeJsExit', 'The event loop became empty before the ' +
                           "handler's promise settled: nothing is left that could settle it"));
  };
  this.context = makeContext(this.id, this.headers, function (error) {
    if (error !== undefined && error !== null) {
      self.fail(error);
    }
  });
  this.stream = new ResponseStream(function (contentType) {
    return api.streamResponse(self.id, contentType, function (status) {
      if (status !== 202) {
        self.stream.drop();
      }
      self.answer();
    });
  }, highWaterMark);
}

StreamingInvocation.prototype.run = function (handler) {
  var self = this;
  try {
    addIdentities(this.context, this.headers);
    var result = handler(JSON.parse(this.event), this.stream, this.context);
  } catch (error) {
    this.fail(error);
    return;
  }
  if (!result || typeof result.then !== 'function') {
    this.fail(runtimeError('Runtime.MalformedStreamingHandler', 'Streaming does not support ' +
                           'non-async handlers: the handler given to awslambda.streamifyResponse ' +
                           'must return a promise, as an async function does'));
    return;
  }
  result.then(function (value) {
    if (value !== undefined) {
      console.warn('Streaming handlers ignore return values.');
    }
    self.settled = true;
    self.onIdle = function () {
      self.fail(new Error('Response stream is not finished.'));
    };
    var stream = self.stream;
    if (stream.cut && stream.cause) {
      self.fail(stream.cause);
    } else if (stream.cut) {
      stream.send();
    }
    self.proceed();
  }, function (error) {
    self.fail(error);
  });
};

/** The handler failed: the error goes out as the stream's trailers, or posted if nothing was. */
StreamingInvocation.prototype.fail = function (error) {
  var description = describeError(error);
  logError('Invoke Error', description);
  this.settled = true;
  this.sendError(description);
};

/** The first error is the one the caller gets. */
StreamingInvocation.prototype.sendError = function (description) {
  var self = this;
  var stream = this.stream;
  if (this.failed) {
    return;
  }
  this.failed = true;
  if (!stream.request) { // nothing written: a plain error result, which the caller sees whole
    stream.drop();
    stream.sent = true;
    this.api.postError(this.id, JSON.stringify(description), description.errorType, function () {
      self.answer();
    });
  } else if (!stream.fail(description)) {
    console.warn('Invocation ' + this.id + ' has streamed its whole result: a later error is ' +
                 'only logged');
    this.proceed();
  }
};

StreamingInvocation.prototype.answer = function () {
  this.answered = true;
  this.proceed();
};

StreamingInvocation.prototype.proceed = function () {
  if (this.proceeded || !this.settled || !this.answered) {
    return;
  }
  this.proceeded = true;
  current = null;
  (this.exit || this.next)();
};

StreamingInvocation.prototype.failFatally = function (description, done) {
  this.exit = done;
  this.settled = true;
  this.sendError(description);
  this.proceed(); // at once if the result is out already
};

/** Takes the next event, hands it to the function, and carries on once the answer is posted. */
function serveOne(api, handler) {
  api.nextInvocation(function (received) {
    var next = function () {
      serveOne(api, handler);
    };
    var invocation = isStreaming(handler)
      ? new StreamingInvocation(api, received, next, handler[HANDLER_HIGH_WATER_MARK])
      : new Invocation(api, received, next);
    current = invocation;
    currentRequestId = invocation.id;
    var traceId = received.headers['lambda-runtime-trace-id'];
    if (traceId) {
      process.env._X_AMZN_TRACE_ID = traceId;
    } else {
      delete process.env._X_AMZN_TRACE_ID;
    }
    invocation.run(handler);
  });
}

function main() {
  var runtimeApi = requiredSetting('AWS_LAMBDA_RUNTIME_API', 'host:port of the Runtime API');
  var taskRoot = requiredSetting('LAMBDA_TASK_ROOT', "the folder of the function's code");
  patchConsole();
  var api = new RuntimeApiClient(runtimeApi);
  var loaded = false;
  var exiting = false;

  // An error nobody catches fails the current invocation (or init), then ends the process.
  function fatal(label, exitCode, error) {
    var description = describeError(error);
    logError(label, description);
    if (exiting) {
      return;
    }
    exiting = true;
    var exit = function () {
      process.exit(exitCode);
    };
    var invocation = current;
    if (!loaded) {
      api.postInitError(JSON.stringify(description), description.errorType, exit);
    } else if (invocation) {
      invocation.failFatally(description, exit);
    } else {
      exit();
    }
  }
  process.on('uncaughtException', function (error) {
    fatal('Uncaught Exception', EXIT_UNCAUGHT_EXCEPTION, error);
  });
  process.on('unhandledRejection', function (reason) {
    fatal('Unhandled Promise Rejection', EXIT_UNHANDLED_REJECTION,
          runtimeError('Runtime.UnhandledPromiseRejection', String(reason), reason));
  });
  process.on('beforeExit', function () {
    if (current) {
      current.onIdle();
    }
  });

  installAwsLambdaGlobal();
  loadHandler(taskRoot, process.env._HANDLER || '').then(function (handler) {
    loaded = true;
    serveOne(api, handler);
  }, function (error) {
    fatal('Uncaught Exception', EXIT_UNCAUGHT_EXCEPTION, error);
  });
}

main();
