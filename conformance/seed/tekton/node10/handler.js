'use strict';

const camelCase = require('camelcase');

exports.endpoint = async (event) => ({
  camelCase: camelCase(event.words),
  installedIn: require.resolve('camelcase')
});
