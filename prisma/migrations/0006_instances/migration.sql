-- A student's further containers (instances) are sessions of their own, each
-- under its first session: adopted with it after a restart, ended with it.
ALTER TABLE "Session" ADD COLUMN "parentId" TEXT;
ALTER TABLE "Session" ADD COLUMN "instance" INTEGER NOT NULL DEFAULT 1;
