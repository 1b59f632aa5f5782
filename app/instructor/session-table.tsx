"use client";
// The instructor's list: live sessions (click one to watch it) and, below, the ended ones.
import type { SessionRow } from "../../server/common/protocol.ts";
import { formatAgo, formatBytes, formatClock, formatDuration, shortId } from "../lib/format.ts";
import { useNow } from "../lib/use-now.ts";

interface Props {
  rows: SessionRow[];
  watched?: string;
  onWatch(id: string): void;
  onEnd(row: SessionRow): void;
  /** Opens what the session's container serves on `port`. */
  onPreview(row: SessionRow, port: number): void;
}

const dash = "—";
const MAX_ENDED_SHOWN = 100;

export function SessionTable({ rows, watched, onWatch, onEnd, onPreview }: Props) {
  const now = useNow();
  const live = rows.filter((row) => row.state !== "ended");
  // Most recently ended first; a long class day need not fill the page.
  const ended = rows
    .filter((row) => row.state === "ended")
    .sort((a, b) => (b.endedAt ?? "").localeCompare(a.endedAt ?? ""))
    .slice(0, MAX_ENDED_SHOWN);
  return (
    <>
      <table className="sessions" data-testid="live-sessions">
        <thead>
          <tr>
            <th>Student</th>
            <th>Container</th>
            <th>Image</th>
            <th>State</th>
            <th>Lesson</th>
            <th>Started</th>
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
              <td colSpan={12} className="empty">
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
              <td>{row.studentName || <span className="muted">(no name)</span>}</td>
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
                <button
                  className="danger small"
                  onClick={(event) => {
                    // The row itself opens the terminal; this button only ends.
                    event.stopPropagation();
                    onEnd(row);
                  }}
                >
                  End
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
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
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}
