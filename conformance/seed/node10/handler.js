'use strict';

// The original KLR node10 example: an async handler.
exports.sayHelloAsync = async (event) => {
  return {hello: event.name};
};
