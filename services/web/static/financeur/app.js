import { requireSession } from "../common/api.js";
import { clear, el, frame } from "../common/layout.js";

const current = await requireSession(["funder","admin"]);
const main = frame(current, "/financeur/");
clear(main).append(el("h1", {}, document.title.split(" — ")[0]));
main.setAttribute("aria-busy", "false");
