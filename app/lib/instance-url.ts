// Which of the student's instances the page shows: ?instance=N in the address
// (so a reload or a bookmark comes back to it), 1 without it.
import { useCallback, useEffect, useState } from "react";

function fromLocation(): number {
  if (typeof window === "undefined") return 1;
  const n = Number(new URLSearchParams(window.location.search).get("instance") ?? "1");
  return Number.isInteger(n) && n >= 1 && n <= 20 ? n : 1;
}

/**
 * The instance in the address (undefined until the page runs in the browser:
 * the static page cannot know it), and a way to go to another (the back
 * button comes back).
 */
export function useInstanceFromUrl(): [number | undefined, (instance: number) => void] {
  const [instance, setInstance] = useState<number>();
  useEffect(() => {
    setInstance(fromLocation());
    const back = () => setInstance(fromLocation());
    window.addEventListener("popstate", back);
    return () => window.removeEventListener("popstate", back);
  }, []);
  const select = useCallback((next: number) => {
    const url = new URL(window.location.href);
    if (next === 1) url.searchParams.delete("instance");
    else url.searchParams.set("instance", String(next));
    window.history.pushState(null, "", url);
    setInstance(next);
  }, []);
  return [instance, select];
}
