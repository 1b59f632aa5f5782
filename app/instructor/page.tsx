// `/instructor`: the instructor's live view of the room, behind a token.
import type { Metadata } from "next";
import { InstructorApp } from "./instructor-app.tsx";

export const metadata: Metadata = { title: "Instructor · Container playground" };

export default function InstructorPage() {
  return <InstructorApp />;
}
