/* Per-request metrics: one call adds a request to a series (the layout of balancer/proxy/metrics.py). */
#include "codec.h"

/* series slots: requests, responses_1xx..5xx, bytes_in, bytes_out, latency_ms_sum, errors, then the histogram */
#define N_FIELDS 10
static const double buckets_ms[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define N_BUCKETS ((Py_ssize_t)(sizeof(buckets_ms) / sizeof(buckets_ms[0])))

static int add(PyObject *list, Py_ssize_t i, long long delta) {
    long long value = PyLong_AsLongLong(PyList_GET_ITEM(list, i));
    if (value == -1 && PyErr_Occurred()) return -1;
    PyObject *sum = PyLong_FromLongLong(value + delta);
    if (sum == NULL) return -1;
    PyList_SetItem(list, i, sum);
    return 0;
}

/* account(series, status, bytes_in, bytes_out, latency_ms, error) */
PyObject *vf_account(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6 || !PyList_CheckExact(args[0]) || PyList_GET_SIZE(args[0]) != N_FIELDS + N_BUCKETS + 1) {
        PyErr_SetString(PyExc_TypeError, "account(series: list, status, bytes_in, bytes_out, latency_ms, error)");
        return NULL;
    }
    PyObject *series = args[0];
    long status = PyLong_AsLong(args[1]);
    long long bytes_in = PyLong_AsLongLong(args[2]), bytes_out = PyLong_AsLongLong(args[3]);
    double latency = PyFloat_AsDouble(args[4]);
    int error = PyObject_IsTrue(args[5]);
    if (PyErr_Occurred()) return NULL;
    long klass = status / 100;
    Py_ssize_t bucket = 0;
    while (bucket < N_BUCKETS && latency > buckets_ms[bucket]) bucket++; /* bisect_left */
    if (add(series, 0, 1) < 0 || (klass >= 1 && klass <= 5 && add(series, klass, 1) < 0) ||
        (bytes_in && add(series, 6, bytes_in) < 0) || (bytes_out && add(series, 7, bytes_out) < 0) ||
        (error && add(series, 9, 1) < 0) || add(series, N_FIELDS + bucket, 1) < 0)
        return NULL;
    double sum = PyFloat_AsDouble(PyList_GET_ITEM(series, 8));
    if (sum == -1.0 && PyErr_Occurred()) return NULL;
    PyObject *total = PyFloat_FromDouble(sum + latency);
    if (total == NULL) return NULL;
    PyList_SetItem(series, 8, total);
    Py_RETURN_NONE;
}
