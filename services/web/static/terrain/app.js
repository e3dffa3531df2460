import { requireSession } from "../common/api.js";
import { clear, el, frame } from "../common/layout.js";

const current = await requireSession(["consultant","admin"]);
const main = frame(current, "/terrain/");
clear(main).append(el("h1", {}, document.title.split(" — ")[0]));
main.setAttribute("aria-busy", "false");
