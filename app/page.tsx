"use client";
// `/`: the student page. Everything happens in the browser (a terminal over a
// socket), so the server sends only the shell of the page. Each of the
// student's instances gets a page of its own (?instance=N): switching
// remounts it with a new connection to that instance's shell.
import { useInstanceFromUrl } from "./lib/instance-url.ts";
import { StudentApp } from "./student-app.tsx";

export default function StudentPage() {
  const [instance, select] = useInstanceFromUrl();
  if (instance === undefined) return null;
  return <StudentApp key={instance} instance={instance} onSelectInstance={select} />;
}
