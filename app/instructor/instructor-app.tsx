"use client";
// The instructor page: a live list of every session (raised hands first), a
// view of the terminal of the one clicked (read-only, unless its student lets
// the instructor type), how any session's container was built, the replay and
// download of any session's recording, and what the instructor tells or does
// to the room: a notice, more time, the end; and links to what each
// container serves (its port previews).
//
// The token travels in the socket.io handshake (`auth`), never in a URL the
// server logs; a `?token=` link is accepted once, stored in sessionStorage
// (this tab only) and removed from the address bar.
import { useCallback, useEffect, useRef, useState } from "react";
import type { Socket } from "socket.io-client";
import {
  MAX_INPUT_BYTES,
  type InstructorClientEvents,
  type InstructorServerEvents,
  type Notice,
  type RoomInfo,
  type SessionRow,
  type StepInfo,
} from "../../server/common/protocol.ts";
import { BuildSteps } from "../components/build-steps.tsx";
import { ConnectionDot } from "../components/connection-dot.tsx";
import { TerminalView } from "../components/terminal-view.tsx";
import { splitInput } from "../lib/flow-control.ts";
import { formatBytes, shortId } from "../lib/format.ts";
import type { OpenTerminal } from "../lib/terminal.ts";
import { saveRecording } from "./recording-files.ts";
import { ReplayView } from "./replay-view.tsx";
import { EXTEND_MINUTES, RoomControls } from "./room-controls.tsx";
import { SessionTable } from "./session-table.tsx";
import { TokenForm } from "./token-form.tsx";

type InstructorSocket = Socket<InstructorServerEvents, InstructorClientEvents>;

const TOKEN_KEY = "playground.instructorToken";

/** token: asking for it; connecting: handshake sent; open: the list is live. */
type Phase = "loading" | "token" | "connecting" | "open";

export function InstructorApp() {
  const [phase, setPhase] = useState<Phase>("loading");
  const [tokenError, setTokenError] = useState<string>();
  const [connected, setConnected] = useState(false);
  const [rows, setRows] = useState<SessionRow[]>([]);
  const [watched, setWatched] = useState<string>();
  const [viewKey, setViewKey] = useState(0);
  const [failure, setFailure] = useState<string>();
  const [room, setRoom] = useState<RoomInfo>();
  const [notice, setNotice] = useState<Notice | null>(null);
  /** The build steps shown, for whose session. */
  const [steps, setSteps] = useState<{ sessionId: string; steps: StepInfo[] }>();
  const [replay, setReplay] = useState<{ sessionId: string; studentName?: string; live: boolean }>();
  /** The instructor types into the watched terminal (its student allows it). */
  const [typing, setTyping] = useState(false);
  const [token, setToken] = useState("");

  const socketRef = useRef<InstructorSocket>(undefined);
  const watchedRef = useRef<string>(undefined);
  const terminalRef = useRef<OpenTerminal>(undefined);
  /** Output that arrived before the viewer's terminal was ready. */
  const queue = useRef<string[]>([]);
  /** Bumped by every connect and by unmount: a connect overtaken by a newer one gives up. */
  const attempt = useRef(0);

  const write = useCallback((data: string) => {
    if (terminalRef.current) terminalRef.current.term.write(data);
    else queue.current.push(data);
  }, []);

  /** A fresh, empty viewer: the server replays the watched terminal's recent output first. */
  const resetViewer = useCallback(() => {
    terminalRef.current = undefined;
    queue.current = [];
    setViewKey((key) => key + 1);
  }, []);

  const connect = useCallback(
    async (token: string) => {
      const mine = ++attempt.current;
      socketRef.current?.disconnect();
      setPhase("connecting");
      const { io } = await import("socket.io-client");
      if (mine !== attempt.current) return;
      const socket: InstructorSocket = io("/instructor", { auth: { token } });
      socketRef.current = socket;
      setToken(token);
      socket.on("connect", () => {
        setConnected(true);
        setPhase("open");
        setFailure(undefined);
        // A new connection watches nothing yet: pick the watched terminal up again.
        if (watchedRef.current) {
          resetViewer();
          socket.emit("watch", watchedRef.current);
        }
      });
      socket.on("connect_error", (error) => {
        setConnected(false);
        // A refusal by the server's auth check is final (socket.io stops
        // retrying); a network error is retried and shown as "reconnecting".
        if (!socket.active) {
          sessionStorage.removeItem(TOKEN_KEY);
          setTokenError(`The server refused this token (${error.message}).`);
          setPhase("token");
        }
      });
      socket.on("disconnect", () => setConnected(false));
      socket.on("room", (info) => setRoom(info));
      socket.on("sessions", (list) => setRows(list));
      socket.on("output", (sessionId, data) => {
        if (sessionId === watchedRef.current) write(data);
      });
      socket.on("failure", (message) => setFailure(message));
      socket.on("notice", (current) => setNotice(current));
      socket.on("steps", (sessionId, list) => setSteps({ sessionId, steps: list }));
    },
    [resetViewer, write],
  );

  useEffect(() => {
    const url = new URL(window.location.href);
    const fromUrl = url.searchParams.get("token");
    if (fromUrl) {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
      url.searchParams.delete("token");
      window.history.replaceState(null, "", url);
    }
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) connect(token);
    else setPhase("token");
    return () => {
      attempt.current++;
      socketRef.current?.disconnect();
    };
  }, [connect]);

  const submitToken = (token: string) => {
    sessionStorage.setItem(TOKEN_KEY, token);
    setTokenError(undefined);
    connect(token);
  };

  const forgetToken = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    attempt.current++;
    socketRef.current?.disconnect();
    socketRef.current = undefined;
    watchedRef.current = undefined;
    setWatched(undefined);
    setReplay(undefined);
    setSteps(undefined);
    setRows([]);
    setPhase("token");
  };

  const watch = (id: string) => {
    if (id === watchedRef.current) return;
    watchedRef.current = id;
    setWatched(id);
    setTyping(false);
    setReplay(undefined);
    resetViewer();
    socketRef.current?.emit("watch", id);
  };

  const closeViewer = () => {
    watchedRef.current = undefined;
    setWatched(undefined);
    setTyping(false);
    terminalRef.current = undefined;
    socketRef.current?.emit("unwatch");
  };

  /** Keys typed into the watched terminal, while taking over. */
  const typeInto = useCallback((data: string) => {
    const id = watchedRef.current;
    if (!id) return;
    for (const chunk of splitInput(data, MAX_INPUT_BYTES)) socketRef.current?.emit("type", id, chunk);
  }, []);

  const openReplay = (row: SessionRow) => {
    closeViewer();
    setReplay({ sessionId: row.id, studentName: row.studentName, live: row.state !== "ended" });
  };
  const download = (row: SessionRow) => saveRecording(token, row.id, row.studentName).catch((e: unknown) => setFailure(e instanceof Error ? e.message : String(e)));
  const endAll = () => {
    if (window.confirm("End every live session? Their containers and everything in them are removed.")) socketRef.current?.emit("endAll");
  };

  const end = (row: SessionRow) => {
    const who = row.studentName || "a student with no name";
    const container = row.containerId ? ` (container ${shortId(row.containerId)})` : "";
    if (window.confirm(`End the session of ${who}${container}? Their container and everything in it is removed.`)) {
      socketRef.current?.emit("end", row.id);
    }
  };

  /**
   * Opens a student's port preview in a new tab. The tab is opened at once
   * (a tab opened after the request would be taken for a pop-up), cut from
   * this page (the preview must not reach back to it), then sent to the
   * address the server answers with: the preview origin, with a grant.
   */
  const openPreview = async (row: SessionRow, port: number) => {
    const tab = window.open("about:blank", "_blank");
    if (tab) tab.opener = null;
    try {
      const res = await fetch("/api/preview", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ""}` },
        body: JSON.stringify({ session: row.id, port }),
      });
      const body = (await res.json()) as { url?: string; error?: string };
      if (!body.url) throw new Error(body.error ?? `the server answered ${res.status}`);
      if (tab) tab.location.href = body.url;
    } catch (error) {
      tab?.close();
      setFailure(`The preview of port ${port} could not be opened: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  const onReady = useCallback((terminal: OpenTerminal) => {
    terminalRef.current = terminal;
    for (const data of queue.current.splice(0)) terminal.term.write(data);
  }, []);

  if (phase === "loading") return null;
  if (phase === "token") return <TokenForm error={tokenError} onToken={submitToken} />;

  const live = rows.filter((row) => row.state !== "ended").length;
  const watchedRow = rows.find((row) => row.id === watched);
  // Typing stops the moment the student withdraws their consent.
  const mayType = watchedRow?.state === "running" && watchedRow.takeoverAllowed === true;
  const takingOver = typing && mayType;
  const stepsRow = steps && rows.find((row) => row.id === steps.sessionId);
  return (
    <div className="instructor-page">
      <header className="status-bar">
        <span className="brand">container playground · instructor</span>
        <span className="field" data-testid="live-count">
          {live} live {live === 1 ? "session" : "sessions"}
        </span>
        <span className="spacer" />
        <ConnectionDot connected={connected} />
        <button className="link" onClick={forgetToken}>
          Forget token
        </button>
      </header>
      {failure && (
        <div className="banner failed" role="alert">
          <span>{failure}</span>
          <button className="link" onClick={() => setFailure(undefined)}>
            Dismiss
          </button>
        </div>
      )}
      {room && (
        <section className="room" data-testid="room">
          {room.joinCode === null ? (
            <p className="open-room">Open room: anyone who reaches this server gets a shell (no join code).</p>
          ) : (
            <p>
              Join code <strong className="join-code-shown" data-testid="join-code">{room.joinCode}</strong>
            </p>
          )}
          <p className="muted">
            Image <code>{room.image}</code>
            {room.imageSource && <span data-testid="room-image"> · from {room.imageSource}</span>}
            {room.limits.memoryBytes !== undefined && <> · {formatBytes(room.limits.memoryBytes)} memory</>}
            {room.limits.cpus !== undefined && <> · {room.limits.cpus} CPU</>}
            {room.limits.pidsLimit !== undefined && <> · {room.limits.pidsLimit} processes</>}
            {room.pool.size > 0 && (
              <>
                {" "}
                · <span data-testid="pool-ready" title="containers built ahead, waiting for the next students to press Start">ready: {room.pool.ready}</span>
              </>
            )}
          </p>
        </section>
      )}
      <RoomControls
        notice={notice}
        liveCount={live}
        onNotice={(text) => socketRef.current?.emit("notice", text)}
        onExtendAll={(minutes) => socketRef.current?.emit("extend", { session: "all", minutes })}
        onEndAll={endAll}
      />
      <section className="list">
        <SessionTable
          rows={rows}
          watched={watched}
          onWatch={watch}
          onEnd={end}
          onExtend={(row) => socketRef.current?.emit("extend", { session: row.id, minutes: EXTEND_MINUTES })}
          onLowerHand={(row) => socketRef.current?.emit("lowerHand", row.id)}
          onSteps={(row) => socketRef.current?.emit("steps", row.id)}
          onReplay={openReplay}
          onDownload={download}
          onPreview={openPreview}
        />
      </section>
      {steps && (
        <div className="steps-overlay">
          <BuildSteps
            steps={steps.steps}
            title={`How ${stepsRow?.studentName || "this student"}'s container was built`}
            onClose={() => setSteps(undefined)}
          />
        </div>
      )}
      {replay && <ReplayView key={replay.sessionId} token={token} {...replay} onClose={() => setReplay(undefined)} />}
      {watched && (
        <section className="viewer" data-testid="viewer">
          <div className="viewer-title">
            <span>
              Watching <strong>{watchedRow?.studentName || "(no name)"}</strong>
              {watchedRow?.containerId && (
                <>
                  {" "}
                  · <code>{shortId(watchedRow.containerId)}</code>
                </>
              )}
              {watchedRow?.state === "ended" && <span className="muted"> · ended</span>}
              <span className="muted">{takingOver ? " · you are typing in this terminal" : " · read-only"}</span>
            </span>
            <span className="replay-actions">
              {mayType && (
                <label className="switch" title="The student lets you type into their terminal">
                  <input type="checkbox" checked={typing} onChange={(event) => setTyping(event.target.checked)} /> Type in this terminal
                </label>
              )}
              <button className="link" onClick={closeViewer}>
                Close
              </button>
            </span>
          </div>
          <TerminalView key={viewKey} readOnly={!takingOver} onReady={onReady} onData={typeInto} exposeForTests className="fill" />
        </section>
      )}
    </div>
  );
}
