// The test suite finds Envoy the way the CLI does (src/envoy/find-envoy.ts).
export { ENVOY_HOWTO, findEnvoy } from '../../src/envoy/find-envoy.js';
