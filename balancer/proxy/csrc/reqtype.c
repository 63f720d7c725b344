/* The Request type: what parse_request returns (fields filled by request.c). */
#include "codec.h"

#include <structmember.h>

PyObject *vf_request_id_of(PyObject *request) {
    return Py_IS_TYPE(request, &vf_RequestType) ? ((vf_Request *)request)->request_id : NULL;
}

static void request_dealloc(vf_Request *r) {
    Py_XDECREF(r->method);
    Py_XDECREF(r->path);
    Py_XDECREF(r->host);
    Py_XDECREF(r->request_id);
    Py_XDECREF(r->upstream);
    Py_XDECREF(r->xff);
    Py_XDECREF(r->cookie);
    Py_XDECREF(r->accept);
    Py_XDECREF(r->upgrade);
    PyObject_Free(r);
}

static PyMemberDef request_members[] = {
    {"end", T_PYSSIZET, offsetof(vf_Request, end), READONLY, "offset just after the head"},
    {"method", T_OBJECT, offsetof(vf_Request, method), READONLY, NULL},
    {"path", T_OBJECT, offsetof(vf_Request, path), READONLY, NULL},
    {"host", T_OBJECT, offsetof(vf_Request, host), READONLY, NULL},
    {"request_id", T_OBJECT, offsetof(vf_Request, request_id), READONLY, NULL},
    {"upstream", T_OBJECT, offsetof(vf_Request, upstream), READONLY, "the head to send to the backend"},
    {"xff", T_OBJECT, offsetof(vf_Request, xff), READONLY, NULL},
    {"cookie", T_OBJECT, offsetof(vf_Request, cookie), READONLY, NULL},
    {"accept", T_OBJECT, offsetof(vf_Request, accept), READONLY, NULL},
    {"upgrade", T_OBJECT, offsetof(vf_Request, upgrade), READONLY, NULL},
    {"content_length", T_LONGLONG, offsetof(vf_Request, content_length), READONLY, "-1 when absent"},
    {"flags", T_INT, offsetof(vf_Request, flags), READONLY, "HEAD_REQUEST | CLIENT_HTTP10 as they apply"},
    {"http10", T_BOOL, offsetof(vf_Request, http10), READONLY, NULL},
    {"keep_alive", T_BOOL, offsetof(vf_Request, keep_alive), READONLY, NULL},
    {"chunked", T_BOOL, offsetof(vf_Request, chunked), READONLY, NULL},
    {"expect_continue", T_BOOL, offsetof(vf_Request, expect_continue), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject vf_RequestType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "balancer.proxy._codec.Request",
    .tp_basicsize = sizeof(vf_Request),
    .tp_dealloc = (destructor)request_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A parsed request head (made by parse_request).",
    .tp_members = request_members,
};
