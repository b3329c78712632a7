mod kube_source;
