// A project's applications: read from `GET /projects/{id}/applications` when its detail
// opens (every funder's, as the funder topic shows them), then updated with the API's
// answer to each decision recorded here; kept per signed-in subject for the next visit.

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

  replace(projectId, list) {
    this.byProject[projectId] = [...list];
    this.save();
  }

  save() {
    try {
      localStorage.setItem(this.key, JSON.stringify(this.byProject));
    } catch (_) {
      // private mode or full storage: kept for this page only
    }
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
