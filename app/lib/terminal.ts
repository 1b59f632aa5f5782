// Opens an xterm.js terminal in a DOM element. xterm.js touches `window` and
// `document` as soon as it is imported, so it is loaded here with dynamic
// imports, called from effects: the pages still render on the server, and the
// terminal code is fetched only by browsers that show a terminal.
import type { Terminal } from "@xterm/xterm";
import { openTerminalLink } from "./links.ts";

export interface OpenTerminal {
  term: Terminal;
  /** Resizes the terminal to fill its element (cols × rows of the current font). */
  fit(): void;
  dispose(): void;
}

const theme = {
  background: "#0f1419",
  foreground: "#e6e1cf",
  cursor: "#7ee787",
  selectionBackground: "#3d5a80",
  black: "#1c2128",
  brightBlack: "#636e7b",
};

function loadXterm() {
  return Promise.all([import("@xterm/xterm"), import("@xterm/addon-fit"), import("@xterm/addon-web-links")]);
}

/**
 * Fetches the terminal's code ahead of need (a page that will show a
 * terminal calls it once it is up): fetching and compiling it after the
 * click on Start took most of the time to the prompt.
 */
export function preloadTerminal(): void {
  loadXterm().catch(() => {}); // a failure shows when the terminal opens
}

/** `fit`: the terminal follows its element's size (false: its size is set by the caller, as a replay sets the recording's). */
export async function openTerminal(element: HTMLElement, options: { readOnly: boolean; fit?: boolean }): Promise<OpenTerminal> {
  const [{ Terminal }, { FitAddon }, { WebLinksAddon }] = await loadXterm();
  const term = new Terminal({
    cursorBlink: !options.readOnly,
    disableStdin: options.readOnly,
    fontFamily: '"DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace',
    fontSize: 14,
    // At 1.0 the DOM renderer clips underscores at the bottom of the cell with many fonts.
    lineHeight: 1.15,
    scrollback: 5000,
    theme,
    // OSC 8 hyperlinks (printf '\e]8;;URL\e\\text\e]8;;\e\\'): opened only if safe (links.ts).
    linkHandler: { activate: (_event, text) => openTerminalLink(text), allowNonHttpProtocols: true },
  });
  const fitAddon = new FitAddon();
  term.loadAddon(fitAddon);
  // Plain URLs printed in the terminal: the same rule.
  term.loadAddon(new WebLinksAddon((_event, uri) => openTerminalLink(uri)));
  term.open(element);

  // Copy on selection, as in most Linux terminals. Paste needs nothing here:
  // xterm.js listens to the browser's paste event, so Ctrl+Shift+V and the
  // right-click menu's "Paste" both reach the shell. The clipboard API exists
  // only on secure origins (https or localhost): elsewhere Ctrl+C of the
  // browser menu still works.
  const selection = term.onSelectionChange(() => {
    const text = term.getSelection();
    if (text && navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
  });

  const fit = () => {
    // A hidden element has no size: fitting it would shrink the terminal to nothing.
    if (options.fit !== false && element.clientWidth > 0 && element.clientHeight > 0) fitAddon.fit();
  };
  // The element changes size with the window and when banners come and go.
  const observer = new ResizeObserver(() => fit());
  observer.observe(element);
  fit();

  return {
    term,
    fit,
    dispose() {
      observer.disconnect();
      selection.dispose();
      term.dispose();
    },
  };
}

/** The whole buffer (scrollback and screen) as plain text, one line per row. */
export function terminalText(term: Terminal): string {
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let y = 0; y < buffer.length; y++) lines.push(buffer.getLine(y)?.translateToString(true) ?? "");
  return lines.join("\n");
}
