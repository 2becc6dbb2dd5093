import type { Stage } from './stage.js';

/**
 * How the MCP path reaches its upstream: the pipeline's last stage, one implementation per MCP
 * transport the upstream speaks. Streamable HTTP (`forward.ts`) forwards each request; legacy
 * HTTP+SSE (`legacy-bridge.ts`) holds the upstream's event stream per session and posts to its
 * message endpoint. Everything before this stage (authentication, sessions, policy, budgets) is the
 * same for both.
 */
export interface UpstreamTransport {
  readonly kind: 'streamable-http' | 'legacy-sse';
  /** Sends the request upstream and streams the answer back; resolves when the client's response is over. */
  readonly forward: Stage;
  /** Ends what the transport holds open upstream (legacy event streams) at shutdown. */
  close(): void;
}
