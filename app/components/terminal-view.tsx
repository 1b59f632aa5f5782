"use client";
// A React home for one xterm.js terminal. The terminal is created after the
// element is in the page (xterm.js is loaded on demand) and handed to the
// parent through `onReady`; the parent writes to it and listens to it.
import { useEffect, useRef } from "react";
import { openTerminal, type OpenTerminal } from "../lib/terminal.ts";

declare global {
  interface Window {
    /** The page's terminal, for the browser tests (see e2e/). */
    __term?: OpenTerminal["term"];
  }
}

interface Props {
  readOnly: boolean;
  onReady(terminal: OpenTerminal): void;
  /** Keys typed or text pasted (not called when read-only). */
  onData?(data: string): void;
  onResize?(size: { cols: number; rows: number }): void;
  /** Exposes the terminal as `window.__term` so the browser tests can read its buffer (their build only). */
  exposeForTests?: boolean;
  /** False: the terminal keeps the size it is given instead of filling the element (a replay). */
  fit?: boolean;
  className?: string;
}

export function TerminalView({ readOnly, onReady, onData, onResize, exposeForTests, fit, className }: Props) {
  const element = useRef<HTMLDivElement>(null);
  // The latest callbacks, read by listeners that are registered only once.
  const callbacks = useRef({ onReady, onData, onResize });
  callbacks.current = { onReady, onData, onResize };

  const opened = useRef<OpenTerminal | undefined>(undefined);
  const readOnlyNow = useRef(readOnly);
  readOnlyNow.current = readOnly;
  const fitNow = useRef(fit);

  useEffect(() => {
    let cancelled = false;
    openTerminal(element.current!, { readOnly: readOnlyNow.current, fit: fitNow.current }).then((terminal) => {
      if (cancelled) {
        terminal.dispose();
        return;
      }
      opened.current = terminal;
      terminal.term.options.disableStdin = readOnlyNow.current;
      terminal.term.onData((data) => callbacks.current.onData?.(data));
      terminal.term.onResize((size) => callbacks.current.onResize?.(size));
      // Only in the browser tests' own build (e2e/global-setup.ts): a production build leaves this out entirely.
      if (process.env.NEXT_PUBLIC_PLAYGROUND_TEST_HOOKS === "1" && exposeForTests) window.__term = terminal.term;
      callbacks.current.onReady(terminal);
      if (!readOnlyNow.current) terminal.term.focus();
    });
    return () => {
      cancelled = true;
      const terminal = opened.current;
      opened.current = undefined;
      if (terminal && window.__term === terminal.term) delete window.__term;
      terminal?.dispose();
    };
    // One terminal per mount; a change of `readOnly` is applied below.
  }, []);

  // A session that ends leaves its terminal on screen, read-only.
  useEffect(() => {
    const terminal = opened.current;
    if (!terminal) return;
    terminal.term.options.disableStdin = readOnly;
    terminal.term.options.cursorBlink = !readOnly;
    if (!readOnly) terminal.term.focus();
  }, [readOnly]);

  return <div ref={element} className={`terminal ${className ?? ""}`} data-testid="terminal" />;
}
