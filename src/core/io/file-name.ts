/**
 * A name from the user or from a file (a task name, a class name) made safe
 * as a download's file name on every desktop system: no path separators or
 * control characters, nothing Windows refuses (reserved device names,
 * trailing dots or spaces, <>:"|?*), no leading dot (hidden on Unix), and
 * short enough for any file system once the extension is added.
 */
const RESERVED = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$/i;

export function safeFileName(name: string, fallback = 'task', max = 80): string {
  let s = name.normalize('NFKC')
    .replace(/[^\p{L}\p{M}\p{N}._ -]+/gu, '_') // separators, controls, markup, emoji and <>:"|?*
    .replace(/_+/g, '_')
    .replace(/^[.\s_]+|[.\s_]+$/g, '');
  // Cut by code points so a surrogate pair is never split.
  s = [...s].slice(0, max).join('').replace(/[.\s_]+$/, '');
  if (!s) return fallback;
  return RESERVED.test(s) ? `_${s}` : s;
}
