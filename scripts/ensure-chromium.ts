import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { run } from './lib/run.ts';

// Runs before `npm test` (npm's pretest), after ensure-postgres: the dashboard's browser
// tests drive Debian's chromium through playwright-core. Installs it when missing and we are
// root, or stops with the command to run.

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const INSTALL_COMMAND = 'apt-get update && apt-get install -y --no-install-recommends chromium';

if (!existsSync(CHROMIUM)) {
  if (userInfo().uid !== 0) {
    console.error(
      `missing chromium (${CHROMIUM}); install with:\n  sudo sh -c '${INSTALL_COMMAND}'`,
    );
    process.exit(1);
  }
  console.log("installing chromium from Debian's packages...");
  await run('sh', ['-c', INSTALL_COMMAND], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (!existsSync(CHROMIUM)) {
    console.error(`chromium is still missing at ${CHROMIUM} after the install`);
    process.exit(1);
  }
}
