/**
 * Whether a path names a gRPC procedure: `package.Service/Method`, package
 * optional, no leading slash. The same language as
 * `/^[A-Za-z_][A-Za-z0-9_.]*\/[A-Za-z_][A-Za-z0-9_]*$/`, scanned by hand:
 * every call is checked, and the RegExp (its builtin entry and match) cost
 * about twice the instructions of this loop.
 */
export function isProcedurePath(path: string): boolean {
  const length = path.length;
  if (!isNameStart(path.charCodeAt(0))) return false;
  let i = 1;
  for (; i < length; i++) {
    const c = path.charCodeAt(i);
    if (c === 47 /* "/" */) break;
    if (!isNameChar(c) && c !== 46 /* "." */) return false;
  }
  // The method: a name start, then name characters to the end.
  if (++i >= length || !isNameStart(path.charCodeAt(i))) return false;
  for (i++; i < length; i++) if (!isNameChar(path.charCodeAt(i))) return false;
  return true;
}

/** A-Z, a-z, _ (NaN, past the end, is none of them). */
function isNameStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

/** A name start or 0-9. */
function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 48 && c <= 57);
}
