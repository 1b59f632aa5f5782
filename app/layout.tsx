// The root layout shared by the student page and the instructor page. The
// xterm.js stylesheet is global CSS, so it is imported once here; the xterm
// code itself is loaded in the browser only (see lib/terminal.ts).
import type { Metadata, Viewport } from "next";
import type { ReactNode } from "react";
import "@xterm/xterm/css/xterm.css";
import "./globals.css";

export const metadata: Metadata = {
  title: "Container playground",
  description: "A Linux container of your own, in the browser",
};

export const viewport: Viewport = {
  width: "device-width",
  initialScale: 1,
  themeColor: "#0f1419",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
