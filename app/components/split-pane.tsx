"use client";
// The terminal with a side panel (the lesson) to its right, and a handle
// between them to drag: the panel's width is remembered by the browser.
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";

const WIDTH_KEY = "playground.sidePanelWidth";
const MIN_WIDTH = 240;

interface Props {
  children: ReactNode;
  /** The side panel, or nothing (the terminal takes the whole width). */
  side?: ReactNode;
  /** The terminal's size changed. */
  onResized(): void;
}

export function SplitPane({ children, side, onResized }: Props) {
  const [width, setWidth] = useState(() => (typeof window === "undefined" ? 380 : Number(localStorage.getItem(WIDTH_KEY)) || 380));
  const dragging = useRef(false);

  // The terminal refits to its new box when the panel comes, goes or is resized.
  useEffect(() => {
    const frame = requestAnimationFrame(onResized);
    return () => cancelAnimationFrame(frame);
  }, [side !== undefined, width, onResized]);

  const onPointerDown = useCallback((event: React.PointerEvent) => {
    dragging.current = true;
    (event.target as HTMLElement).setPointerCapture(event.pointerId);
  }, []);
  const onPointerMove = useCallback((event: React.PointerEvent) => {
    if (!dragging.current) return;
    const next = Math.min(Math.max(window.innerWidth - event.clientX, MIN_WIDTH), window.innerWidth * 0.7);
    setWidth(next);
  }, []);
  const onPointerUp = useCallback(() => {
    dragging.current = false;
    localStorage.setItem(WIDTH_KEY, String(Math.round(width)));
  }, [width]);

  return (
    <div className="split-pane">
      <div className="split-main">{children}</div>
      {side && (
        <>
          <div
            className="split-handle"
            role="separator"
            aria-orientation="vertical"
            aria-label="Resize the lesson"
            onPointerDown={onPointerDown}
            onPointerMove={onPointerMove}
            onPointerUp={onPointerUp}
          />
          <div className="split-side" style={{ width }}>
            {side}
          </div>
        </>
      )}
    </div>
  );
}
