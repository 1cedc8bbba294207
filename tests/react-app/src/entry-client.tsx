import { StrictMode } from "react";
import { hydrateRoot } from "react-dom/client";
import { App } from "./App";

hydrateRoot(
  document.getElementById("root")!,
  <StrictMode>
    <App server={window.SERVER!} />
  </StrictMode>,
  { onRecoverableError: (error) => console.error("hydration: recoverable error", error) },
);
