-- Containers are supervised by shims that outlive the server; sessions are found again by their cookie after a restart.
ALTER TABLE "Container" ADD COLUMN "shimTag" TEXT;
ALTER TABLE "Container" ADD COLUMN "steps" TEXT;
ALTER TABLE "Session" ADD COLUMN "cookieHash" TEXT;
ALTER TABLE "Container" ADD COLUMN "session" TEXT;
