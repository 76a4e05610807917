'use strict';

var ms = require('ms');

exports.endpoint = function (event, context, callback) {
  callback(null, {
    milliseconds: ms(event.duration),
    installedIn: require.resolve('ms')
  });
};
