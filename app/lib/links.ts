// Links in a terminal's output are the student's (or a program's) words, so
// the page decides what clicking one may do. Only web and mail links open,
// always in a new tab that cannot reach back into this one (noopener: no
// `window.opener`, so a page a student made cannot read the instructor's
// tab, its token included). `javascript:`, `data:` and every other scheme do
// nothing at all.
const ALLOWED = new Set(["http:", "https:", "mailto:"]);

/** The URL to open, or null when a link must stay inert. */
export function safeLinkTarget(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return null;
  }
  return ALLOWED.has(url.protocol) ? url.href : null;
}

/** Opens a terminal link the safe way, or not at all. */
export function openTerminalLink(text: string): void {
  const target = safeLinkTarget(text);
  if (target) window.open(target, "_blank", "noopener,noreferrer");
}
