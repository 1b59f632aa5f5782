"use client";
// The instructor's list: live sessions (click one to watch it; raised hands
// come first) and, below, the ended ones; each with how its container was
// built and its recording (replay, download).
import type { SessionRow } from "../../server/common/protocol.ts";
import { formatAgo, formatBytes, formatClock, formatDuration, shortId } from "../lib/format.ts";
import { useNow } from "../lib/use-now.ts";
import { EXTEND_MINUTES } from "./room-controls.tsx";

interface Props {
  rows: SessionRow[];
  watched?: string;
  onWatch(id: string): void;
  onEnd(row: SessionRow): void;
  /** Opens what the session's container serves on `port`. */
  onPreview(row: SessionRow, port: number): void;
  onExtend(row: SessionRow): void;
  onLowerHand(row: SessionRow): void;
  onSteps(row: SessionRow): void;
  onReplay(row: SessionRow): void;
  onDownload(row: SessionRow): void;
}

/** A button in a row that does its own thing, not the row's (watching). */
function RowButton({ label, onClick, className = "small", title }: { label: string; onClick(): void; className?: string; title?: string }) {
  return (
    <button
      className={className}
      title={title}
      onClick={(event) => {
        event.stopPropagation();
        onClick();
      }}
    >
      {label}
    </button>
  );
}

/** How the container was built, and the recording: for live and ended rows alike. */
function SessionButtons({ row, onSteps, onReplay, onDownload }: { row: SessionRow } & Pick<Props, "onSteps" | "onReplay" | "onDownload">) {
  return (
    <>
      {row.state !== "starting" && <RowButton label="Steps" title="How was this built?" onClick={() => onSteps(row)} />}
      {row.recordingBytes !== undefined && (
        <>
          <RowButton label="Replay" title={`Replay the recording (${formatBytes(row.recordingBytes)})`} onClick={() => onReplay(row)} />
          <RowButton label=".cast" title="Download the recording (asciicast: plays in asciinema)" onClick={() => onDownload(row)} />
        </>
      )}
    </>
  );
}

const dash = "—";
const MAX_ENDED_SHOWN = 100;

export function SessionTable({ rows, watched, onWatch, onEnd, onExtend, onLowerHand, onSteps, onReplay, onDownload, onPreview }: Props) {
  const now = useNow();
  const live = rows.filter((row) => row.state !== "ended");
  // Most recently ended first; a long class day need not fill the page.
  const ended = rows
    .filter((row) => row.state === "ended")
    .sort((a, b) => (b.endedAt ?? "").localeCompare(a.endedAt ?? ""))
    .slice(0, MAX_ENDED_SHOWN);
  return (
    <>
      {/* Many columns: on a narrow screen the table scrolls, its buttons stay reachable. */}
      <div className="table-scroll">
        <table className="sessions" data-testid="live-sessions">
          <thead>
            <tr>
              <th>Hand</th>
              <th>Student</th>
              <th>Container</th>
              <th>Image</th>
              <th>State</th>
              <th>Lesson</th>
              <th>Started</th>
              <th>Time left</th>
              <th>Last activity</th>
              <th className="num">CPU</th>
              <th className="num">Memory</th>
              <th className="num">PIDs</th>
              <th>IP</th>
              <th>Ports</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {live.length === 0 && (
              <tr>
                <td colSpan={15} className="empty">
                  No sessions yet. Students open this server&apos;s address and press Start.
                </td>
              </tr>
            )}
            {live.map((row) => (
              <tr
                key={row.id}
                className={`clickable ${row.id === watched ? "selected" : ""}`}
                onClick={() => onWatch(row.id)}
                data-session-id={row.id}
                title="Watch this terminal"
              >
                <td>
                  {row.handRaisedAt ? (
                    <span className="hand" data-testid="hand" title={`raised ${formatAgo(row.handRaisedAt, now)}`}>
                      ✋ <RowButton className="link" label="Lower" onClick={() => onLowerHand(row)} />
                    </span>
                  ) : (
                    dash
                  )}
                </td>
                <td>
                  {row.studentName || <span className="muted">(no name)</span>}
                  {row.instance && <span className="muted" title={`instance ${row.instance.number} of this student's`}> · {row.instance.name}</span>}
                  {row.takeoverAllowed && <span className="muted" title="The student lets you type into their terminal"> · may type</span>}
                </td>
                <td>
                  <code>{row.containerId ? shortId(row.containerId) : dash}</code>
                </td>
                <td>
                  <code>{row.image}</code>
                </td>
                <td>
                  <span className={`state ${row.state}`}>{row.state}</span>
                  {!row.attached && row.state === "running" && <span className="muted"> (detached)</span>}
                </td>
                <td className="lesson-place" data-testid="lesson-place">
                  {row.lesson ? (
                    <span title={`${row.lesson.title}: ${row.lesson.passed} of ${row.lesson.steps} steps checked`}>
                      {row.lesson.step + 1}/{row.lesson.steps} {row.lesson.stepTitle}{" "}
                      <span className="muted">· {formatDuration(now - Date.parse(row.lesson.since))}</span>
                    </span>
                  ) : (
                    dash
                  )}
                </td>
                <td>{formatClock(row.startedAt)}</td>
                <td className="num">{row.expiresAt ? formatDuration(Date.parse(row.expiresAt) - now) : dash}</td>
                <td>{formatAgo(row.lastActivityAt, now)}</td>
                <td className="num">{row.cpuPercent === undefined ? dash : `${row.cpuPercent.toFixed(1)} %`}</td>
                <td className="num">{row.memoryBytes === undefined ? dash : formatBytes(row.memoryBytes)}</td>
                <td className="num">{row.pids ?? dash}</td>
                <td>
                  <code>{row.ip ?? dash}</code>
                </td>
                <td className="preview-ports">
                  {row.ports?.length
                    ? row.ports.map((port) => (
                        <button
                          key={port}
                          className="link"
                          title={`Open what this container serves on port ${port}`}
                          onClick={(event) => {
                            event.stopPropagation();
                            onPreview(row, port);
                          }}
                        >
                          {port}
                        </button>
                      ))
                    : dash}
                </td>
                <td>
                  <span className="row-actions">
                    <SessionButtons row={row} onSteps={onSteps} onReplay={onReplay} onDownload={onDownload} />
                    <RowButton label={`+${EXTEND_MINUTES}m`} title={`${EXTEND_MINUTES} more minutes before this session ends`} onClick={() => onExtend(row)} />
                    <RowButton className="danger small" label="End" onClick={() => onEnd(row)} />
                  </span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {ended.length > 0 && (
        <>
          <h2 className="section">Ended</h2>
          <table className="sessions ended" data-testid="ended-sessions">
            <thead>
              <tr>
                <th>Student</th>
                <th>Container</th>
                <th>Image</th>
                <th>Started</th>
                <th>Ended</th>
                <th>Why</th>
                <th>Files</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {ended.map((row) => (
                <tr key={row.id} data-session-id={row.id}>
                  <td>{row.studentName || <span className="muted">(no name)</span>}</td>
                  <td>
                    <code>{row.containerId ? shortId(row.containerId) : dash}</code>
                  </td>
                  <td>
                    <code>{row.image}</code>
                  </td>
                  <td>{formatClock(row.startedAt)}</td>
                  <td>{row.endedAt ? formatClock(row.endedAt) : dash}</td>
                  <td>{row.endReason ?? dash}</td>
                  <td className="saved-work">{row.savedWork ?? dash}</td>
                  <td>
                    <span className="row-actions">
                      <SessionButtons row={row} onSteps={onSteps} onReplay={onReplay} onDownload={onDownload} />
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}
