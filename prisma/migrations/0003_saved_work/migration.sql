-- Students keep their files between sessions.
CREATE TABLE "SavedWork" (
    "key" TEXT NOT NULL PRIMARY KEY,
    "cookieHash" TEXT NOT NULL,
    "studentName" TEXT NOT NULL,
    "sessionId" TEXT NOT NULL,
    "bytes" INTEGER NOT NULL,
    "diffId" TEXT NOT NULL,
    "savedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" DATETIME NOT NULL
);
CREATE INDEX "SavedWork_cookieHash_idx" ON "SavedWork"("cookieHash");
ALTER TABLE "Session" ADD COLUMN "savedWork" TEXT;
