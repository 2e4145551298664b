package master

import (
	"context"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/sparkd/sparkd/protocol"
)

// Who may call what on the RPC listener (issue #16). With authentication
// on, every request is signed with a role's key (protocol.AuthenticateRoles
// verifies it); each route then admits:
//
//	GET  /v1/leader, /v1/state        any role
//	POST /v1/workers                  master; a worker registering its own id
//	     /v1/workers/{id}/...         master; worker {id}
//	POST /v1/apps                     master; an application (bound to it)
//	     /v1/apps/{id}/...            master; the application that registered {id}
//	     /v1/drivers...               master; applications too when
//	                                  Config.AllowAppSubmit (submit, status only)
//
// With authentication off every route admits everyone.

// rule decides whether id may call r; nil allows.
type rule func(m *Master, r *http.Request, id protocol.Identity) error

func anyRole(*Master, *http.Request, protocol.Identity) error { return nil }

func masterOnly(_ *Master, r *http.Request, id protocol.Identity) error {
	if id.Role == protocol.RoleMaster {
		return nil
	}
	return protocol.Forbidden(id, r.Method+" "+r.URL.Path)
}

// ownWorker admits a worker only for its own id (the {id} of the path, or
// the id of a registration, checked by the handler).
func ownWorker(_ *Master, r *http.Request, id protocol.Identity) error {
	switch id.Role {
	case protocol.RoleMaster:
		return nil
	case protocol.RoleWorker:
		if p, ok := mux.Vars(r)["id"]; !ok || p == id.Principal {
			return nil
		}
		return protocol.Forbidden(id, "act for worker "+mux.Vars(r)["id"])
	}
	return protocol.Forbidden(id, r.Method+" "+r.URL.Path)
}

// ownApp admits an application only for the app ids it registered.
func ownApp(m *Master, r *http.Request, id protocol.Identity) error {
	switch id.Role {
	case protocol.RoleMaster:
		return nil
	case protocol.RoleApplication:
		appID, ok := mux.Vars(r)["id"]
		if !ok {
			return nil // registration: bound to id by the handler
		}
		m.mu.Lock()
		a := m.st.apps[appID]
		var owner string
		if a != nil {
			owner = a.desc.Principal
		}
		m.mu.Unlock()
		if a == nil || owner == id.Principal {
			return nil // unknown: the handler answers 404
		}
		return protocol.Forbidden(id, "act for application "+appID+", which another application registered")
	}
	return protocol.Forbidden(id, r.Method+" "+r.URL.Path)
}

// driverSubmit admits the master role, and applications when the operator
// allowed them to submit drivers.
func driverSubmit(m *Master, r *http.Request, id protocol.Identity) error {
	if id.Role == protocol.RoleMaster || id.Role == protocol.RoleApplication && m.cfg.AllowAppSubmit {
		return nil
	}
	return protocol.Forbidden(id, r.Method+" "+r.URL.Path+" (spark.authenticate.allowApplicationSubmit is off)")
}

// guard wraps h with rule when authentication is on.
func (m *Master) guard(rl rule, h http.Handler) http.Handler {
	if m.creds == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := protocol.IdentityFrom(r)
		if !ok {
			protocol.WriteError(w, http.StatusUnauthorized, "authentication failed: request is not signed", nil)
			return
		}
		if err := rl(m, r, id); err != nil {
			protocol.WriteErr(w, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// callerIdentity is the identity that signed r, and whether authentication
// is on at all.
func (m *Master) callerIdentity(r *http.Request) (protocol.Identity, bool) {
	if m.creds == nil {
		return protocol.Identity{}, false
	}
	id, _ := protocol.IdentityFrom(r)
	return id, true
}

// checkWorkerCaller refuses a registration by a worker for another id.
func (m *Master) checkWorkerCaller(r *http.Request, workerID string) error {
	if id, on := m.callerIdentity(r); on && id.Role == protocol.RoleWorker && id.Principal != workerID {
		return protocol.Forbidden(id, "register worker "+workerID)
	}
	return nil
}

// appPrincipal is the principal an application registration binds: the
// caller's, for an application; the body's (or appID) for the master role.
func (m *Master) appPrincipal(r *http.Request, inBody, appID string) string {
	id, on := m.callerIdentity(r)
	switch {
	case !on:
		return inBody
	case id.Role == protocol.RoleApplication:
		return id.Principal
	case inBody != "":
		return inBody
	}
	return appID
}

// signFor returns ctx for a message to base: pushes to an application are
// signed with that application's key, the only one it can verify.
func (m *Master) signFor(ctx context.Context, base, path string) context.Context {
	if m.creds == nil || !strings.HasPrefix(path, "/v1/app/") {
		return ctx
	}
	m.mu.Lock()
	var p string
	if a := m.st.appByClient[base]; a != nil {
		p = a.desc.Principal
	} else { // ApplicationRemoved goes out after the app left appByClient
		for _, a := range m.st.completedApps {
			if a.clientURL == base {
				p = a.desc.Principal
			}
		}
	}
	m.mu.Unlock()
	if p == "" {
		return ctx
	}
	return protocol.SignAs(ctx, protocol.Identity{Role: protocol.RoleApplication, Principal: p})
}
