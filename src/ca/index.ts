// The mesh CA: public surface.
export * from './ca.js';
export * from './store.js';
export * from './renewal.js';
export {
  RsaKeyPool,
  generateEcKey,
  curveForSize,
  RSA_SIZES,
  type RsaSize,
  type RsaKeyPoolOptions,
  type KeyAlgo,
} from './keypool.js';
export { parseDn, formatDn, dnEquals, type DnAttribute } from './x509.js';
export * from './manager.js';
export * from './export.js';
