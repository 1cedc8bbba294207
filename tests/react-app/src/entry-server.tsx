import { StrictMode } from "react";
import { renderToString } from "react-dom/server";
import { App } from "./App";

/** The app's HTML for a server at `server` (ws://host:port). */
export function render(server: string): string {
  return renderToString(
    <StrictMode>
      <App server={server} />
    </StrictMode>,
  );
}
