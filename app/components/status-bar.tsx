"use client";
// The line above a student's terminal: which container this is, how long it
// has left, and the student's switches: a raised hand, letting the
// instructor type (and whether they are typing now), the recording to download.
import type { SessionControls, SessionInfo } from "../../server/common/protocol.ts";
import { formatDuration, shortId } from "../lib/format.ts";
import { useNow } from "../lib/use-now.ts";
import { ConnectionDot } from "./connection-dot.tsx";

interface Props {
  info: SessionInfo | null;
  connected: boolean;
  phase: "starting" | "running" | "ended" | "failed";
  /** Opens the list of steps that built the container. */
  onShowSteps(): void;
  /** Ends the session (the student's own "End"; their files are kept when the room keeps work). */
  onEnd(): void;
  controls?: SessionControls;
  onHand(raised: boolean): void;
  onTakeover(allowed: boolean): void;
  /** Someone else (the instructor) typed into the terminal a moment ago. */
  othersTyping: boolean;
}

export function StatusBar({ info, connected, phase, onShowSteps, onEnd, controls, onHand, onTakeover, othersTyping }: Props) {
  const now = useNow();
  const expiresAt = controls?.expiresAt ?? info?.expiresAt;
  return (
    <header className="status-bar" data-testid="status-bar">
      <span className="brand">container playground</span>
      {info ? (
        <>
          {info.studentName && <span className="field">{info.studentName}</span>}
          <span className="field" title={info.containerId}>
            <span className="label">container</span> <code data-testid="container-id">{shortId(info.containerId)}</code>
          </span>
          <span className="field">
            <span className="label">image</span> <code>{info.image}</code>
          </span>
          <span className="field">
            <span className="label">host</span> <code>{info.hostname}</code>
          </span>
          <span className="field">
            <span className="label">ip</span> <code>{info.ip}</code>
          </span>
          {phase === "running" ? (
            <span className="field" data-testid="time-left">
              <span className="label">time left</span> {formatDuration(Date.parse(expiresAt!) - now)}
            </span>
          ) : (
            <span className="field">ended</span>
          )}
          {info.steps.length > 0 && (
            <button className="small" onClick={onShowSteps} aria-haspopup="dialog">
              How was this built?
            </button>
          )}
          {phase === "running" && controls && (
            <>
              <button
                className={`small ${controls.handRaised ? "raised" : ""}`}
                aria-pressed={controls.handRaised}
                onClick={() => onHand(!controls.handRaised)}
                title={controls.handRaised ? "Lower your hand" : "Ask your instructor for help"}
              >
                {controls.handRaised ? "✋ Hand raised" : "Raise hand"}
              </button>
              <label className="switch" title="Your instructor can type into your terminal while this is on">
                <input type="checkbox" checked={controls.takeoverAllowed} onChange={(event) => onTakeover(event.target.checked)} /> Let the instructor type
              </label>
            </>
          )}
          {othersTyping && (
            <span className="typing-notice" role="status" data-testid="typing-notice">
              The instructor is typing…
            </span>
          )}
          {info.recorded && (
            <a className="button small" href={`/api/recordings/${info.id}.cast`} download title="This session's recording (asciicast: plays in asciinema)">
              Download recording
            </a>
          )}
          {phase === "running" && (
            <button className="small" onClick={onEnd} title="End this session; your files are kept for next time">
              End session
            </button>
          )}
        </>
      ) : (
        <span className="field">{phase === "starting" ? "starting your container…" : ""}</span>
      )}
      <span className="spacer" />
      <ConnectionDot connected={connected} />
    </header>
  );
}
