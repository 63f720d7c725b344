/* Compiled state types: BackendState (state.py), the worker's AppCore (app.ProxyApp) and round_robin's core. */
#include "hot.h"

#include <math.h>
#include <structmember.h>

/* --- BackendState ----------------------------------------------------------------------------------------- */

void vf_state_observe(vf_State *s, double now, double latency_ms, int failed) {
    if (failed) { /* a failure looks at least twice as slow as the average, and at least the penalty */
        if (s->ewma * 2 > latency_ms) latency_ms = s->ewma * 2;
        if (VF_ERROR_PENALTY_MS > latency_ms) latency_ms = VF_ERROR_PENALTY_MS;
    }
    if (latency_ms > s->ewma) { /* peak EWMA: a slower sample is taken at once, faster ones decay in */
        s->ewma = latency_ms;
    } else {
        double weight = exp(-(now - s->ewma_at) / VF_EWMA_DECAY_S);
        s->ewma = s->ewma * weight + latency_ms * (1 - weight);
    }
    s->ewma_at = now;
}

static PyObject *state_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *id;
    if (!PyArg_ParseTuple(args, "U:BackendState", &id)) return NULL;
    vf_State *s = (vf_State *)type->tp_alloc(type, 0);
    if (s != NULL) s->id = Py_NewRef(id);
    return (PyObject *)s;
}

static void state_dealloc(vf_State *s) {
    Py_XDECREF(s->id);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *state_usable(vf_State *s, PyObject *now) {
    double t = PyFloat_AsDouble(now);
    if (t == -1.0 && PyErr_Occurred()) return NULL;
    return PyBool_FromLong(!s->down && s->ejected_until <= t);
}

static PyObject *state_observe(vf_State *s, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "observe(now, latency_ms, failed)");
        return NULL;
    }
    double now = PyFloat_AsDouble(args[0]), latency = PyFloat_AsDouble(args[1]);
    int failed = PyObject_IsTrue(args[2]);
    if (PyErr_Occurred()) return NULL;
    vf_state_observe(s, now, latency, failed);
    Py_RETURN_NONE;
}

static PyObject *state_cost(vf_State *s, PyObject *now) {
    return PyFloat_FromDouble((s->ewma + 1.0) * (double)(s->inflight + 1));
}

static PyMethodDef state_methods[] = {
    {"usable", (PyCFunction)state_usable, METH_O, "usable(now): not down and not ejected"},
    {"observe", (PyCFunction)(void (*)(void))state_observe, METH_FASTCALL,
     "observe(now, latency_ms, failed): peak EWMA; a failure counts as slow"},
    {"cost", (PyCFunction)state_cost, METH_O, "cost(now): (ewma + 1) x (in flight + 1)"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef state_members[] = {
    {"id", T_OBJECT, offsetof(vf_State, id), READONLY, NULL},
    {"inflight", T_LONG, offsetof(vf_State, inflight), 0, "requests in flight to this backend (this worker)"},
    {"fails", T_LONG, offsetof(vf_State, fails), 0, "consecutive connect errors / 5xx"},
    {"ejections", T_LONG, offsetof(vf_State, ejections), 0, NULL},
    {"ewma", T_DOUBLE, offsetof(vf_State, ewma), 0, "peak-EWMA latency, ms"},
    {"ewma_at", T_DOUBLE, offsetof(vf_State, ewma_at), 0, NULL},
    {"ejected_until", T_DOUBLE, offsetof(vf_State, ejected_until), 0, "the proxy's clock (codec.clock)"},
    {"down", T_BOOL, offsetof(vf_State, down), 0, "the health overlay says down"},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject vf_StateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "balancer.proxy._codec.BackendState",
    .tp_basicsize = sizeof(vf_State),
    .tp_dealloc = (destructor)state_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "BackendState(backend_id): in-flight count, peak-EWMA latency, passive ejection of one backend.",
    .tp_methods = state_methods,
    .tp_members = state_members,
    .tp_new = state_new,
};

/* --- the worker's state and the default algorithm ----------------------------------------------------------- */

static PyObject *app_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    vf_App *a = (vf_App *)type->tp_alloc(type, 0);
    if (a == NULL) return NULL;
    a->snapshot = Py_NewRef(Py_None);
    a->upstreams = Py_NewRef(Py_None);
    a->metrics = Py_NewRef(Py_None);
    a->access_log = Py_NewRef(Py_None);
    return (PyObject *)a;
}

static int app_traverse(vf_App *a, visitproc visit, void *arg) {
    Py_VISIT(a->snapshot);
    Py_VISIT(a->exact);
    Py_VISIT(a->wildcard);
    Py_VISIT(a->upstreams);
    Py_VISIT(a->metrics);
    Py_VISIT(a->access_log);
    return 0;
}

static int app_clear(vf_App *a) {
    Py_CLEAR(a->snapshot);
    Py_CLEAR(a->exact);
    Py_CLEAR(a->wildcard);
    Py_CLEAR(a->upstreams);
    Py_CLEAR(a->metrics);
    Py_CLEAR(a->access_log);
    return 0;
}

VF_GC_DEALLOC(app, vf_App)

static PyMemberDef app_members[] = {
    OBJ(vf_App, upstreams, "the pooled backend connections"), OBJ(vf_App, metrics, NULL),
    OBJ(vf_App, access_log, "called (exchange, elapsed) after each exchange, or None"),
    {"upstream_timeout", T_DOUBLE, offsetof(vf_App, upstream_timeout), 0, "seconds without upstream progress"},
    {NULL, 0, 0, 0, NULL},
};

static PyObject *app_get_snapshot(vf_App *a, void *closure) { return Py_NewRef(a->snapshot); }

/* The snapshot is built whole before it is set, so its host indexes are read once here */
static int app_set_snapshot(vf_App *a, PyObject *value, void *closure) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete snapshot");
        return -1;
    }
    PyObject *exact = NULL, *wildcard = NULL;
    if (value != Py_None) {
        if ((exact = PyObject_GetAttr(value, vf_s_exact)) == NULL) return -1;
        if ((wildcard = PyObject_GetAttr(value, vf_s_wildcard)) == NULL) {
            Py_DECREF(exact);
            return -1;
        }
        if (!PyDict_CheckExact(exact) || !PyDict_CheckExact(wildcard)) {
            Py_DECREF(exact);
            Py_DECREF(wildcard);
            PyErr_SetString(PyExc_TypeError, "snapshot.exact and snapshot.wildcard are dicts");
            return -1;
        }
    }
    Py_SETREF(a->snapshot, Py_NewRef(value));
    Py_XSETREF(a->exact, exact);
    Py_XSETREF(a->wildcard, wildcard);
    return 0;
}

static PyGetSetDef app_getset[] = {
    {"snapshot", (getter)app_get_snapshot, (setter)app_set_snapshot,
     "the routing table being served (replaced whole on a change)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

VF_CORE_TYPE(vf_AppType, "AppCore", vf_App, app, NULL, app_getset,
             "The fields of a worker's state that every exchange reads (app.ProxyApp).")

static PyObject *round_robin_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    return type->tp_alloc(type, 0);
}

static PyObject *round_robin_pick(vf_RoundRobin *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyList_Check(args[0]) || PyList_GET_SIZE(args[0]) == 0) {
        PyErr_SetString(PyExc_TypeError, "pick(usable: non-empty list, client_ip, now)");
        return NULL;
    }
    return Py_NewRef(vf_round_robin_pick(self, args[0]));
}

PyObject *vf_round_robin_pick(vf_RoundRobin *self, PyObject *usable) {
    Py_ssize_t index = self->next % PyList_GET_SIZE(usable);
    self->next = index + 1;
    return PyList_GET_ITEM(usable, index);
}

static PyMethodDef round_robin_methods[] = {
    {"pick", (PyCFunction)(void (*)(void))round_robin_pick, METH_FASTCALL,
     "pick(usable, client_ip, now): the next one"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef round_robin_members[] = {
    {"next", T_PYSSIZET, offsetof(vf_RoundRobin, next), 0, "index of the next pick"},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject vf_RoundRobinType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "balancer.proxy._codec.RoundRobinCore",
    .tp_basicsize = sizeof(vf_RoundRobin),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "round_robin's state and pick (algorithms.RoundRobin).",
    .tp_methods = round_robin_methods,
    .tp_members = round_robin_members,
    .tp_new = round_robin_new,
};
