-- Instructors see how an ended session's container was built, extend a session's lifetime, and see raised hands across a restart.
ALTER TABLE "Session" ADD COLUMN "steps" TEXT;
ALTER TABLE "Session" ADD COLUMN "expiresAt" DATETIME;
ALTER TABLE "Session" ADD COLUMN "handRaisedAt" DATETIME;
