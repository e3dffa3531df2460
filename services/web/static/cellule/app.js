import { requireSession } from "../common/api.js";
import { clear, el, frame } from "../common/layout.js";

const current = await requireSession(["crisis_cell","admin"]);
const main = frame(current, "/cellule/");
clear(main).append(el("h1", {}, document.title.split(" — ")[0]));
main.setAttribute("aria-busy", "false");
