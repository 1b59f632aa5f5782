// `/`: the student page. Everything happens in the browser (a terminal over a
// socket), so the server renders only the shell of the page.
import { StudentApp } from "./student-app.tsx";

export default function StudentPage() {
  return <StudentApp />;
}
