// Object builders for what translate keeps (routes, clusters, plan entries: one per descriptor or
// more). V8 (Node 20) gives an object literal that starts with a spread and then adds a property,
// `{ ...base, x }`, a hidden class of its own: about 300 bytes of class and property descriptors per
// object (30 MB for 10,000 descriptors) and slower property reads. Object.assign onto `{}` makes the
// same keys in the same order with shared classes.

/** `{ ...base, ...extra }` (same keys, same order) with a shared hidden class. */
export function withFields<T extends object, U extends object>(base: T, extra: U): Omit<T, keyof U> & U {
  return Object.assign({}, base, extra);
}

/**
 * `value`, frozen all the way down: a sub-object shared by every resource that contains it (built
 * once per process instead of once per descriptor). Resources are never mutated once built; a
 * write to a shared part would throw instead of changing every resource at once.
 */
export function frozen<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) frozen(v);
  }
  return value;
}
