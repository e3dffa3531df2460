// The applications this browser recorded, as the API last answered each one: the
// funding API has no route listing a project's applications (see the report of issue
// 12), so the page keeps the answers of its own POSTs, per signed-in subject.

const PREFIX = "rebond.financeur.demandes.";

export class Applications {
  constructor(subject) {
    this.key = PREFIX + (subject || "anonyme");
    this.byProject = {};
    try {
      this.byProject = JSON.parse(localStorage.getItem(this.key) || "{}") || {};
    } catch (_) {
      this.byProject = {};
    }
  }

  of(projectId) {
    return this.byProject[projectId] || [];
  }

  put(application) {
    const list = this.of(application.project_id).filter((a) => a.id !== application.id);
    list.push(application);
    list.sort((a, b) => (a.submitted_at < b.submitted_at ? -1 : 1));
    this.byProject[application.project_id] = list;
    try {
      localStorage.setItem(this.key, JSON.stringify(this.byProject));
    } catch (_) {
      // private mode or full storage: kept for this page only
    }
  }
}
