{{/*
An IPv4 CIDR as numbers, for the checks of CIDR values (sprig has no network functions). Input: the CIDR string.
Output (JSON): valid (dotted quad, octets 0-255 without leading zeros, prefix 0-32), prefix, start (the network's
first address as an integer), size (addresses), network ("a.b.c.d/p": what Kubernetes opens for it), hostBits
(the address is not its network's, e.g. 10.0.0.5/24).
Use: include "eksflow.ipv4Cidr" "10.0.0.0/16" | fromJson
*/}}
{{- define "eksflow.ipv4Cidr" -}}
{{- $cidr := toString . -}}
{{- if not (regexMatch "^(0|[1-9][0-9]{0,2})(\\.(0|[1-9][0-9]{0,2})){3}/(0|[1-9][0-9]?)$" $cidr) -}}
{{- dict "valid" false | toJson -}}
{{- else -}}
{{- $parts := splitList "/" $cidr -}}
{{- $prefix := atoi (last $parts) -}}
{{- $valid := le $prefix 32 -}}
{{- $address := 0 -}}
{{- range splitList "." (first $parts) -}}
{{- if gt (atoi .) 255 }}{{ $valid = false }}{{ end -}}
{{- $address = add (mul $address 256) (atoi .) -}}
{{- end -}}
{{- $size := 1 -}}
{{- range until (sub 32 (min $prefix 32) | int) }}{{ $size = mul $size 2 }}{{ end -}}
{{- $start := sub $address (mod $address $size) -}}
{{- $network := printf "%d.%d.%d.%d/%d" (mod (div $start 16777216) 256) (mod (div $start 65536) 256) (mod (div $start 256) 256) (mod $start 256) $prefix -}}
{{- dict "valid" $valid "prefix" $prefix "start" $start "size" $size "network" $network "hostBits" (ne $start $address) | toJson -}}
{{- end -}}
{{- end -}}

{{/*
Whether two parsed CIDRs (eksflow.ipv4Cidr) share an address, and whether the first holds all of the second.
Use: include "eksflow.cidrsOverlap" (list $a $b) | eq "true"
*/}}
{{- define "eksflow.cidrsOverlap" -}}
{{- $a := index . 0 -}}{{- $b := index . 1 -}}
{{- and (lt (int64 $a.start) (add $b.start $b.size | int64)) (lt (int64 $b.start) (add $a.start $a.size | int64)) -}}
{{- end -}}
{{- define "eksflow.cidrContains" -}}
{{- $a := index . 0 -}}{{- $b := index . 1 -}}
{{- and (le (int64 $a.start) (int64 $b.start)) (le (add $b.start $b.size | int64) (add $a.start $a.size | int64)) -}}
{{- end -}}
