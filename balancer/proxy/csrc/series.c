/* Per-request metrics: a Series holds one (route, backend)'s counts since the last flush as C numbers, so
 * recording a request allocates nothing.  It reads as a sequence of numbers in the layout of
 * balancer/proxy/metrics.py: requests, responses_1xx..5xx, bytes_in, bytes_out, latency_ms_sum (a float),
 * errors, then the latency histogram (one count per bucket, the last one +Inf). */
#include "hot.h"

#define N_FIELDS 10
#define LATENCY_SUM 8
static const double buckets_ms[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define N_BUCKETS ((Py_ssize_t)(sizeof(buckets_ms) / sizeof(buckets_ms[0])))
_Static_assert(N_FIELDS + sizeof(buckets_ms) / sizeof(buckets_ms[0]) + 1 == VF_N_SLOTS,
               "VF_N_SLOTS matches the series layout");

typedef struct {
    PyObject_HEAD
    long long counts[VF_N_SLOTS]; /* counts[LATENCY_SUM] is unused: latency_sum holds it */
    double latency_sum;
} vf_Series;

static void series_add(vf_Series *s, long status, long long bytes_in, long long bytes_out, double latency_ms,
                       int error) {
    long klass = status / 100;
    Py_ssize_t bucket = 0;
    while (bucket < N_BUCKETS && latency_ms > buckets_ms[bucket]) bucket++; /* bisect_left */
    s->counts[0]++;
    if (klass >= 1 && klass <= 5) s->counts[klass]++;
    s->counts[6] += bytes_in;
    s->counts[7] += bytes_out;
    s->latency_sum += latency_ms;
    if (error) s->counts[9]++;
    s->counts[N_FIELDS + bucket]++;
}

static Py_ssize_t series_length(PyObject *self) { return VF_N_SLOTS; }

static PyObject *series_item(vf_Series *s, Py_ssize_t i) {
    if (i < 0 || i >= VF_N_SLOTS) {
        PyErr_SetString(PyExc_IndexError, "series index out of range");
        return NULL;
    }
    return i == LATENCY_SUM ? PyFloat_FromDouble(s->latency_sum) : PyLong_FromLongLong(s->counts[i]);
}

static PySequenceMethods series_sequence = {
    .sq_length = series_length,
    .sq_item = (ssizeargfunc)series_item,
};

static PyTypeObject SeriesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "balancer.proxy._codec.Series",
    .tp_basicsize = sizeof(vf_Series),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One (route, backend)'s request counts since the last flush (a read-only sequence; see metrics.py).",
    .tp_as_sequence = &series_sequence,
    .tp_new = PyType_GenericNew,
};

/* The Series of (route, backend) in pending, remembered on the backend (a borrowed reference) */
static vf_Series *cached_series(PyObject *pending, PyObject *route, PyObject *backend) {
    if (!VF_IS(backend, &vf_BackendType)) return NULL;
    vf_Backend *b = (vf_Backend *)backend; /* the cache holds pending, so its address is not reused while cached */
    return b->series_pending == pending && b->series_route == route ? (vf_Series *)b->series : NULL;
}

static void remember_series(PyObject *pending, PyObject *route, PyObject *backend, PyObject *series) {
    if (!VF_IS(backend, &vf_BackendType)) return;
    vf_Backend *b = (vf_Backend *)backend;
    Py_XSETREF(b->series, Py_NewRef(series));
    Py_XSETREF(b->series_pending, Py_NewRef(pending));
    Py_XSETREF(b->series_route, Py_NewRef(route));
}

int vf_record(PyObject *pending, PyObject *route, PyObject *backend, long status, long long bytes_in,
              long long bytes_out, double elapsed_s, int error) {
    vf_Series *cached = cached_series(pending, route, backend);
    if (cached != NULL) {
        series_add(cached, status, bytes_in, bytes_out, elapsed_s * 1000.0, error);
        return 0;
    }
    PyObject *key = PyTuple_Pack(2, route, backend);
    if (key == NULL) return -1;
    PyObject *series = PyDict_GetItemWithError(pending, key); /* borrowed */
    if (series == NULL) {
        if (PyErr_Occurred() || (series = PyType_GenericNew(&SeriesType, NULL, NULL)) == NULL) {
            Py_DECREF(key);
            return -1;
        }
        int failed = PyDict_SetItem(pending, key, series);
        Py_DECREF(series); /* the dict holds it */
        if (failed < 0) {
            Py_DECREF(key);
            return -1;
        }
    }
    Py_DECREF(key);
    if (!Py_IS_TYPE(series, &SeriesType)) {
        PyErr_SetString(PyExc_TypeError, "metrics.pending holds Series");
        return -1;
    }
    remember_series(pending, route, backend, series);
    series_add((vf_Series *)series, status, bytes_in, bytes_out, elapsed_s * 1000.0, error);
    return 0;
}

/* record(pending, route, backend, status, bytes_in, bytes_out, elapsed_s, error) */
PyObject *vf_record_py(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "record(pending: dict, route, backend, status, bytes_in, bytes_out, "
                                         "elapsed_s, error)");
        return NULL;
    }
    long status = PyLong_AsLong(args[3]);
    long long bytes_in = PyLong_AsLongLong(args[4]), bytes_out = PyLong_AsLongLong(args[5]);
    double elapsed = PyFloat_AsDouble(args[6]);
    int error = PyObject_IsTrue(args[7]);
    if (PyErr_Occurred()) return NULL;
    if (vf_record(args[0], args[1], args[2], status, bytes_in, bytes_out, elapsed, error) < 0) return NULL;
    Py_RETURN_NONE;
}

int vf_series_init(PyObject *module) {
    if (PyType_Ready(&SeriesType) < 0) return -1;
    return PyModule_AddObjectRef(module, "Series", (PyObject *)&SeriesType);
}
