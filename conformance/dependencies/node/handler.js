'use strict';
var isNumber = require('is-number');

exports.version = function (event, context, callback) {
  callback(null, { isNumber: require('is-number/package.json').version, checked: isNumber(event.value) });
};
