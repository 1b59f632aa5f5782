"use client";
// The replay of a session's recording, live or ended: play and pause, a
// speed, a slider to seek, and the recording's markers ("How was this
// built?", the server's restarts, later a lesson's steps) to jump to. A live
// session's recording is replayed as far as it is written; "Reload" fetches
// what came since.
import { useCallback, useEffect, useState } from "react";
import type { Cast } from "../../server/common/asciicast.ts";
import { markerTitle } from "../../server/common/recording-markers.ts";
import { TerminalView } from "../components/terminal-view.tsx";
import { CastPlayer } from "../lib/cast-player.ts";
import { formatDuration } from "../lib/format.ts";
import type { OpenTerminal } from "../lib/terminal.ts";
import { loadRecording, saveRecording } from "./recording-files.ts";

interface Props {
  token: string;
  sessionId: string;
  studentName?: string;
  live: boolean;
  onClose(): void;
}

const SPEEDS = [0.5, 1, 2, 4, 8];

export function ReplayView({ token, sessionId, studentName, live, onClose }: Props) {
  const [cast, setCast] = useState<Cast>();
  const [error, setError] = useState<string>();
  const [position, setPosition] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(1);
  const [terminal, setTerminal] = useState<OpenTerminal>();
  const [loads, setLoads] = useState(0);
  const [p, setPlayer] = useState<CastPlayer>();

  useEffect(() => {
    let cancelled = false;
    setError(undefined);
    loadRecording(token, sessionId).then(
      (loaded) => !cancelled && setCast(loaded),
      (e: unknown) => !cancelled && setError(e instanceof Error ? e.message : String(e)),
    );
    return () => {
      cancelled = true;
    };
  }, [token, sessionId, loads]);

  useEffect(() => {
    if (!cast || !terminal) return;
    const term = terminal.term;
    term.reset();
    const screen = { write: (data: string) => term.write(data), reset: () => term.reset(), resize: (cols: number, rows: number) => term.resize(cols, rows) };
    const created = new CastPlayer(cast, screen, (at, on) => {
      setPosition(at);
      setPlaying(on);
    });
    setPlayer(created);
    setPosition(0);
    setPlaying(false);
    return () => created.dispose();
  }, [cast, terminal]);

  useEffect(() => p?.setSpeed(speed), [speed, p]);

  const onReady = useCallback((opened: OpenTerminal) => setTerminal(opened), []);
  const duration = p?.duration ?? 0;
  const toggle = () => (playing ? p?.pause() : p?.play());
  const download = () => saveRecording(token, sessionId, studentName).catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));

  return (
    <section className="viewer replay" data-testid="replay">
      <div className="viewer-title">
        <span>
          Replay of <strong>{studentName || "(no name)"}</strong>
          {live && <span className="muted"> · live: as far as recorded</span>}
        </span>
        <span className="replay-actions">
          {live && (
            <button className="link" onClick={() => setLoads((n) => n + 1)}>
              Reload
            </button>
          )}
          <button className="link" onClick={download}>
            Download .cast
          </button>
          <button className="link" onClick={onClose}>
            Close
          </button>
        </span>
      </div>
      {error && (
        <p className="error replay-error" role="alert">
          {error}
        </p>
      )}
      <div className="replay-controls">
        <button className="small" onClick={toggle} disabled={!cast} aria-label={playing ? "Pause" : "Play"}>
          {playing ? "Pause" : "Play"}
        </button>
        <input
          type="range"
          className="replay-slider"
          aria-label="Position"
          min={0}
          max={duration}
          step={0.1}
          value={position}
          disabled={!cast}
          onChange={(event) => p?.seek(Number(event.target.value))}
        />
        <span className="replay-time" data-testid="replay-time">
          {formatDuration(position * 1000)} / {formatDuration(duration * 1000)}
        </span>
        <label>
          Speed{" "}
          <select value={speed} onChange={(event) => setSpeed(Number(event.target.value))} aria-label="Speed">
            {SPEEDS.map((s) => (
              <option key={s} value={s}>
                {s}×
              </option>
            ))}
          </select>
        </label>
      </div>
      {p && p.markers.length > 0 && (
        <ol className="replay-markers" aria-label="Markers">
          {p.markers.map((marker, i) => (
            <li key={i}>
              <button className="link" title={marker.label} onClick={() => p.seek(marker.time)}>
                {formatDuration(marker.time * 1000)} {markerTitle(marker.label)}
              </button>
            </li>
          ))}
        </ol>
      )}
      <div className="replay-screen">
        <TerminalView readOnly fit={false} onReady={onReady} exposeForTests />
      </div>
    </section>
  );
}
