-- A student's place in the room's lesson, kept across server restarts.
ALTER TABLE "Session" ADD COLUMN "lessonId" TEXT;
ALTER TABLE "Session" ADD COLUMN "lessonStep" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "Session" ADD COLUMN "lessonPassed" TEXT NOT NULL DEFAULT '[]';
ALTER TABLE "Session" ADD COLUMN "lessonStepAt" DATETIME;
