"use client";
// The instructor's notice to the room, across the top of the student's page.
// Dismissing it hides this notice in this browser (remembered by its id), not
// the next one the instructor puts up.
import { useEffect, useState } from "react";
import type { Notice } from "../../server/common/protocol.ts";

const DISMISSED_KEY = "playground.dismissedNotice";

export function NoticeBanner({ notice, floating }: { notice: Notice | null; floating?: boolean }) {
  const [dismissed, setDismissed] = useState<string | null>(null);
  useEffect(() => setDismissed(localStorage.getItem(DISMISSED_KEY)), []);
  if (!notice || notice.id === dismissed) return null;
  const dismiss = () => {
    localStorage.setItem(DISMISSED_KEY, notice.id);
    setDismissed(notice.id);
  };
  return (
    <div className={`banner notice ${floating ? "floating" : ""}`} role="status" data-testid="notice">
      <span>
        <strong>From your instructor:</strong> {notice.text}
      </span>
      <button className="small" onClick={dismiss}>
        Dismiss
      </button>
    </div>
  );
}
