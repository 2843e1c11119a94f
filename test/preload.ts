// Integration tests start real redis-server, nginx and PostgreSQL processes and push thousands of
// requests through them; on a 2-core machine some take longer than Bun's 5 s default.
import { setDefaultTimeout } from 'bun:test';

setDefaultTimeout(120_000);
