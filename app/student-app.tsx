"use client";
// The student page: a start form, then a full-window terminal attached to a
// shell in the student's own container, relayed over socket.io; above it,
// file transfers (a file dropped on the terminal is uploaded too) and the
// ports the container listens on, as preview links; across the top, the
// instructor's notice to the room. The student may raise a hand and let the
// instructor type into their terminal.
//
// The session belongs to the browser (a cookie), not to this page: on every
// (re)connect the server says which session this browser has, and replays the
// recent output, so a reload or a dropped network lands back in the same shell.
import { useCallback, useEffect, useRef, useState, type DragEvent } from "react";
import type { Socket } from "socket.io-client";
import {
  MAX_INPUT_BYTES,
  StartRequest,
  type KeptWork,
  type LessonState,
  type LessonSummary,
  type InstanceInfo,
  type PortInfo,
  type Notice,
  type SessionControls,
  type SessionInfo,
  type StudentClientEvents,
  type StudentServerEvents,
} from "../server/common/protocol.ts";
import { BuildSteps } from "./components/build-steps.tsx";
import { LessonPanel } from "./components/lesson-panel.tsx";
import { SplitPane } from "./components/split-pane.tsx";
import { FileTransfer } from "./components/file-transfer.tsx";
import { InstanceTabs } from "./components/instance-tabs.tsx";
import { PortsList } from "./components/ports-list.tsx";
import { NoticeBanner } from "./components/notice-banner.tsx";
import { StartForm, type StartChoice } from "./components/start-form.tsx";
import { StatusBar } from "./components/status-bar.tsx";
import { TerminalView } from "./components/terminal-view.tsx";
import { AckBatcher, splitInput } from "./lib/flow-control.ts";
import { preloadTerminal, type OpenTerminal } from "./lib/terminal.ts";
import { useTransfers } from "./lib/use-transfers.ts";

type StudentSocket = Socket<StudentServerEvents, StudentClientEvents>;

/**
 * connecting: waiting to hear whether this browser has a session;
 * form: no session, the start form is shown; starting: Start was pressed;
 * running: attached to a shell; ended / failed: the terminal stays, read-only, under a banner.
 */
type Phase = "connecting" | "form" | "starting" | "running" | "ended" | "failed";

// ANSI colours for the lines the page itself writes into the terminal.
const DIM = "\x1b[2m";
const RED = "\x1b[31m";
const YELLOW = "\x1b[33m";
const RESET = "\x1b[0m";
const HIDE_CURSOR = "\x1b[?25l";

/** How often the page asks which ports the container listens on. */
const PORTS_EVERY_MS = 5000;

/** Where this browser remembers the room's join code, once typed. */
const CODE_KEY = "playground.joinCode";
/** How long "the instructor is typing" stays up after their last keystroke. */
const TYPING_SHOWN_MS = 3000;

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

interface Props {
  /** Which of the student's containers this page shows (1: the one Start makes). */
  instance: number;
  onSelectInstance(instance: number): void;
}

export function StudentApp({ instance, onSelectInstance }: Props) {
  const [phase, setPhase] = useState<Phase>("connecting");
  const [info, setInfo] = useState<SessionInfo | null>(null);
  const [connected, setConnected] = useState(false);
  const [banner, setBanner] = useState<string>();
  const [formError, setFormError] = useState<string>();
  // A new session gets a new terminal: bumping the key remounts it.
  const [terminalKey, setTerminalKey] = useState(0);
  const [showSteps, setShowSteps] = useState(false);
  const [codeState, setCodeState] = useState<"needed" | "wrong">();
  const [kept, setKept] = useState<KeptWork[]>([]);
  const [lessons, setLessons] = useState<{ list: LessonSummary[]; fixed: boolean }>({ list: [], fixed: false });
  const [lesson, setLesson] = useState<LessonState | null>(null);
  const [lessonOpen, setLessonOpen] = useState(true);
  const [fileMaxBytes, setFileMaxBytes] = useState(0);
  const transfers = useTransfers(fileMaxBytes);
  /** A file is being dragged over the terminal. */
  const [dropping, setDropping] = useState(false);
  const [ports, setPorts] = useState<PortInfo[]>([]);
  const [roomNotice, setRoomNotice] = useState<Notice | null>(null);
  const [controls, setControls] = useState<SessionControls>();
  const [othersTyping, setOthersTyping] = useState(false);
  const [instances, setInstances] = useState<InstanceInfo[]>([]);
  const [instanceRoom, setInstanceRoom] = useState({ max: 1, fixed: false });
  const typingTimer = useRef<ReturnType<typeof setTimeout>>(undefined);

  // Socket handlers are registered once, so they read the current state from refs.
  const phaseRef = useRef<Phase>("connecting");
  const choiceRef = useRef<StartChoice>({ name: "", code: "", fresh: false });
  const socketRef = useRef<StudentSocket>(undefined);
  const terminalRef = useRef<OpenTerminal>(undefined);
  /** Writes that arrived before the terminal was ready. */
  const queue = useRef<{ text: string; ack: boolean }[]>([]);
  const acks = useRef<AckBatcher>(undefined);
  /** Bumped on every connect: output rendered for an earlier connection is not acked to the new one. */
  const generation = useRef(0);

  const go = useCallback((next: Phase) => {
    phaseRef.current = next;
    setPhase(next);
  }, []);

  /** Writes to the terminal; `ack` marks shell output, which is counted for flow control. */
  const write = useCallback((text: string, ack: boolean) => {
    const terminal = terminalRef.current;
    if (!terminal) {
      queue.current.push({ text, ack });
      return;
    }
    const written = generation.current;
    terminal.term.write(
      text,
      ack ? () => written === generation.current && acks.current?.rendered(text.length) : undefined,
    );
  }, []);
  const notice = useCallback((line: string, colour: string) => write(`\r\n${colour}${line}${RESET}\r\n`, false), [write]);
  /** The shell is gone: hide the cursor so the terminal does not look like it waits for input. */
  const closeTerminal = useCallback((line: string) => notice(`${line}${HIDE_CURSOR}`, RED), [notice]);

  const sendSize = useCallback(() => {
    const socket = socketRef.current;
    const terminal = terminalRef.current;
    if (socket?.connected && terminal && phaseRef.current === "running") {
      socket.emit("resize", { cols: terminal.term.cols, rows: terminal.term.rows });
    }
  }, []);

  /** Shows a fresh, empty terminal (the old one is disposed on remount). */
  const newTerminal = useCallback(() => {
    terminalRef.current = undefined;
    queue.current = [];
    setTerminalKey((key) => key + 1);
  }, []);

  const start = useCallback(
    (choice: StartChoice) => {
      const request = StartRequest.safeParse({ name: choice.name.trim() || undefined, code: choice.code.trim() || undefined, fresh: choice.fresh || undefined });
      if (!request.success) {
        setFormError(`Name: ${request.error.issues[0].message}`);
        return;
      }
      choiceRef.current = choice;
      setFormError(undefined);
      setBanner(undefined);
      setInfo(null);
      setShowSteps(false);
      newTerminal();
      go("starting");
      write(`${DIM}Starting your container…${RESET}\r\n`, false);
      socketRef.current?.emit("start", request.data);
    },
    [go, newTerminal, write],
  );

  useEffect(() => {
    let socket: StudentSocket | undefined;
    let stopped = false;
    preloadTerminal();
    import("socket.io-client").then(({ io }) => {
      if (stopped) return;
      const s: StudentSocket = io({ auth: { instance } });
      socket = s;
      socketRef.current = s;
      acks.current = new AckBatcher((chars) => s.connected && s.emit("ack", chars));

      s.on("connect", () => {
        generation.current++;
        acks.current?.reset();
        setConnected(true);
      });
      s.on("disconnect", () => setConnected(false));
      s.on("connect_error", () => setConnected(false));

      s.on("session", (session) => {
        const phase = phaseRef.current;
        if (session) {
          // The code let this browser in: remember it for next time.
          if (choiceRef.current.code.trim()) localStorage.setItem(CODE_KEY, choiceRef.current.code.trim());
          if (phase === "running") {
            // A reattach: the server replays recent output, so start from a clean screen.
            terminalRef.current?.term.reset();
            queue.current = [];
          } else if (phase !== "starting") {
            newTerminal();
          }
          setBanner(undefined);
          setInfo(session);
          go("running");
          sendSize();
          return;
        }
        if (phase === "connecting" && instance > 1) {
          // A further instance needs no form: the student is in the room already.
          newTerminal();
          go("starting");
          write(`${DIM}Starting another container…${RESET}\r\n`, false);
          s.emit("start", {});
        } else if (phase === "connecting") go("form");
        else if (phase === "starting" && instance > 1) s.emit("start", {});
        else if (phase === "starting") {
          // The connection dropped before the container was ready and the
          // server has no session for this browser: ask again.
          const { name, code } = choiceRef.current;
          s.emit("start", { name: name.trim() || undefined, code: code.trim() || undefined });
        } else if (phase === "running") {
          // The session ended while the page was away; `ended` with the
          // reason follows when the server still knows it.
          setBanner("This session ended while the page was disconnected.");
          go("ended");
        }
      });
      s.on("output", (data) => write(data, true));
      s.on("joinCode", (state) => {
        setCodeState(state);
        // A code that worked is kept; one the server refused is forgotten.
        if (state === "wrong") localStorage.removeItem(CODE_KEY);
        // A start refused for its code goes back to the form, where the code can
        // be typed again (the failure that follows is shown there); a "Start a
        // new session" button would only send the same code again. Every
        // connection also hears "needed": that alone does not stop a start
        // that carries a code.
        if (phaseRef.current === "starting" && (state === "wrong" || !choiceRef.current.code.trim())) go("form");
      });
      s.on("kept", (work) => setKept(work));
      s.on("lessons", (list, fixed) => setLessons({ list, fixed }));
      s.on("lesson", (state) => setLesson(state));
      s.on("settings", (settings) => {
        setFileMaxBytes(settings.fileMaxBytes);
        setInstanceRoom({ max: settings.maxInstances, fixed: settings.fixedInstances });
      });
      s.on("instances", (list) => setInstances(list));
      s.on("ports", (list) => setPorts(list));
      s.on("notice", (current) => setRoomNotice(current));
      s.on("controls", (current) => setControls(current));
      s.on("typing", () => {
        setOthersTyping(true);
        clearTimeout(typingTimer.current);
        typingTimer.current = setTimeout(() => setOthersTyping(false), TYPING_SHOWN_MS);
      });
      s.on("progress", (line) => {
        // A reload while the container is still starting: show its progress.
        if (phaseRef.current === "connecting") go("starting");
        write(`${DIM}${line}${RESET}\r\n`, false);
      });
      s.on("ended", (reason) => {
        const phase = phaseRef.current;
        if (phase === "connecting" || phase === "form") {
          // A fresh page for a browser whose last session ended meanwhile.
          setFormError(`Your last session ended: ${reason}.`);
          go("form");
          return;
        }
        setBanner(reason);
        go("ended");
        closeTerminal(`Session ended: ${reason}`);
      });
      s.on("failure", (message) => {
        const phase = phaseRef.current;
        if (phase === "starting") {
          setBanner(message);
          go("failed");
          closeTerminal(message);
        } else if (phase === "running") {
          notice(message, YELLOW);
        } else if (instance > 1) {
          // No form on a further instance's page: say why, with the tabs back to the first.
          setBanner(message);
          go("failed");
        } else {
          setFormError(message);
          if (phase === "connecting") go("form");
        }
      });
    });
    return () => {
      stopped = true;
      acks.current?.reset();
      clearTimeout(typingTimer.current);
      socket?.disconnect();
    };
  }, [closeTerminal, go, instance, newTerminal, notice, sendSize, write]);

  const onReady = useCallback(
    (terminal: OpenTerminal) => {
      terminalRef.current = terminal;
      for (const pending of queue.current.splice(0)) write(pending.text, pending.ack);
      sendSize();
    },
    [sendSize, write],
  );

  const onData = useCallback((data: string) => {
    const socket = socketRef.current;
    // Keys typed while disconnected are dropped rather than sent late to a shell in an unknown state;
    // keys typed while the container starts wait for its shell (typeahead), as on a real terminal.
    const phase = phaseRef.current;
    if (!socket?.connected || (phase !== "running" && phase !== "starting")) return;
    for (const chunk of splitInput(data, MAX_INPUT_BYTES)) socket.emit("input", chunk);
  }, []);

  const end = useCallback(() => socketRef.current?.emit("end"), []);
  const pickLesson = useCallback((id: string | null) => socketRef.current?.emit("lessonPick", id), []);
  const openLessonStep = useCallback((index: number) => socketRef.current?.emit("lessonStep", index), []);
  const checkLessonStep = useCallback(() => socketRef.current?.emit("lessonCheck"), []);
  const collapseLesson = useCallback(() => {
    setLessonOpen(false);
    terminalRef.current?.term.focus();
  }, []);

  const askPorts = useCallback(() => socketRef.current?.connected && socketRef.current.emit("ports"), []);
  // While the shell runs, the list of ports follows what the container does.
  useEffect(() => {
    if (phase !== "running") {
      setPorts([]);
      return;
    }
    askPorts();
    const timer = setInterval(askPorts, PORTS_EVERY_MS);
    return () => clearInterval(timer);
  }, [phase, askPorts]);

  const dragOver = useCallback((event: DragEvent) => {
    if (phaseRef.current !== "running" || !event.dataTransfer.types.includes("Files")) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    setDropping(true);
  }, []);
  const { upload } = transfers;
  const drop = useCallback(
    (event: DragEvent) => {
      setDropping(false);
      if (phaseRef.current !== "running" || event.dataTransfer.files.length === 0) return;
      event.preventDefault();
      for (const file of Array.from(event.dataTransfer.files)) upload(file);
    },
    [upload],
  );
  // Shown at once; the server's `controls` confirms (or corrects) it.
  const raiseHand = useCallback((raised: boolean) => {
    setControls((current) => current && { ...current, handRaised: raised });
    socketRef.current?.emit("hand", raised);
  }, []);
  const allowTakeover = useCallback((allowed: boolean) => {
    setControls((current) => current && { ...current, takeoverAllowed: allowed });
    socketRef.current?.emit("takeover", allowed);
  }, []);

  const openSteps = useCallback(() => setShowSteps(true), []);
  const closeSteps = useCallback(() => {
    setShowSteps(false);
    // Back to typing in the shell, as before the panel was opened.
    if (phaseRef.current === "running") terminalRef.current?.term.focus();
  }, []);

  if (phase === "connecting") {
    return (
      <main className="center">
        <p className="hint">Connecting to the playground…</p>
      </main>
    );
  }
  if (phase === "form") {
    const remembered = typeof window === "undefined" ? "" : (localStorage.getItem(CODE_KEY) ?? "");
    return (
      <>
        <NoticeBanner notice={roomNotice} floating />
        <StartForm connected={connected} error={formError} code={codeState} rememberedCode={remembered} kept={kept} onStart={start} />
      </>
    );
  }

  const over = phase === "ended" || phase === "failed";
  return (
    <div className="terminal-page">
      <StatusBar
        info={info}
        connected={connected}
        phase={phase}
        onShowSteps={openSteps}
        onEnd={end}
        controls={controls}
        onHand={raiseHand}
        onTakeover={allowTakeover}
        othersTyping={othersTyping}
      />
      <NoticeBanner notice={roomNotice} />
      {(instances.length > 1 || (instanceRoom.max > 1 && phase === "running")) && (
        <InstanceTabs instances={instances} current={instance} max={instanceRoom.max} fixed={instanceRoom.fixed} onSelect={onSelectInstance} />
      )}
      {over && (
        <div className={`banner ${phase}`} role="alert" data-testid="banner">
          <span>{phase === "ended" ? <><strong>Session ended:</strong> {banner}</> : capitalize(banner ?? "")}</span>
          <button className="primary" onClick={() => start({ ...choiceRef.current, fresh: false })} disabled={!connected}>
            {instance > 1 ? "Start it again" : "Start a new session"}
          </button>
        </div>
      )}
      {phase === "running" && (
        <div className="tools-bar">
          <FileTransfer state={transfers.state} busy={transfers.busy} onUpload={transfers.upload} onDownload={transfers.download} onDismiss={transfers.dismiss} />
          {info && <PortsList sessionId={info.id} ports={ports} onRefresh={askPorts} />}
        </div>
      )}
      <SplitPane
        side={
          phase === "running" && lessonOpen && (lesson || lessons.list.length > 0) ? (
            <LessonPanel
              lessons={lessons.list}
              fixed={lessons.fixed}
              state={lesson}
              onPick={pickLesson}
              onStep={openLessonStep}
              onCheck={checkLessonStep}
              onCollapse={collapseLesson}
            />
          ) : undefined
        }
        onResized={sendSize}
      >
        <div className="terminal-area" onDragOver={dragOver} onDragLeave={() => setDropping(false)} onDrop={drop}>
          {dropping && <div className="drop-hint">Drop to upload into your terminal&apos;s working directory</div>}
          <TerminalView
            key={terminalKey}
            readOnly={phase !== "running" && phase !== "starting"}
            onReady={onReady}
            onData={onData}
            onResize={sendSize}
            exposeForTests
            className="fill"
          />
          {showSteps && info && <BuildSteps steps={info.steps} onClose={closeSteps} />}
          {phase === "running" && !lessonOpen && (lesson || lessons.list.length > 0) && (
            <button className="small lesson-reopen" onClick={() => setLessonOpen(true)} data-testid="lesson-reopen">
              ⟨ Lesson
            </button>
          )}
        </div>
      </SplitPane>
    </div>
  );
}
