// @ts-check
'use strict';
// Where `npm run build` puts swarmctl's one-file copy. Kept apart from
// bundle-cli.js so that running swarmctl never loads esbuild.
const path = require('node:path');

module.exports = { BUNDLE: path.join(__dirname, '..', 'dist', 'scripts', 'swarmctl.bundle.js') };
